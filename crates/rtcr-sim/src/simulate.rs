//! The simulation rtcrctl runs (filled in next).
