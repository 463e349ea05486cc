//! Errors: one enum for both channels the kernel reports failure on.
//!
//! 1. An IPC-level failure: the returned tag has the error bit, the code is in
//!    the UTCB's TCR error word (`l4sys/include/ipc.h` `l4_ipc_error`,
//!    `L4_ipc_tcr_error` codes; kernel `src/abi/l4_error.cpp`).
//! 2. A kernel object's result: the IPC succeeded and the reply's tag label is
//!    negative: `-errno` (`l4sys/include/err.h`).
//!
//! A third kind is ours: a reply that does not have the shape the protocol
//! promises (too few words, a missing item), so that callers never read
//! garbage from the message registers.

use crate::msgtag::MsgTag;

/// Which phase of an IPC failed (bit 0 of the TCR code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The send phase.
    Send,
    /// The receive phase.
    Receive,
}

/// IPC error codes without the phase bit (`L4_ipc_tcr_error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpcErrorCode {
    /// Timeout (`L4_IPC_SETIMEOUT` 0x2 / `L4_IPC_RETIMEOUT` 0x3).
    Timeout,
    /// Partner does not exist, e.g. empty slot or deleted gate (`L4_IPC_ENOT_EXISTENT` 0x4).
    NotExistent,
    /// Canceled, e.g. by ex_regs CANCEL (0x6 / 0x7).
    Canceled,
    /// Message cut: typed items do not fit the receive buffers (0x8 / 0x9).
    MsgCut,
    /// Page-fault timeout in the send phase (legacy, 0xa / 0xb).
    SndPfTimeout,
    /// Page-fault timeout in the receive phase (legacy, 0xc / 0xd).
    RcvPfTimeout,
    /// Aborted (0xe / 0xf).
    Aborted,
    /// Map failed, e.g. quota (0x10 / 0x11).
    MapFailed,
    /// Explicit reply cap invalid or out of quota (`L4_IPC_ENO_REPLY_CAP`, 0x13).
    NoReplyCap,
    /// A code this crate does not know (the raw 5-bit code).
    Unknown(u8),
}

/// An IPC failure as reported in the TCR error word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpcError {
    /// What went wrong.
    pub code: IpcErrorCode,
    /// In which phase.
    pub phase: Phase,
}

/// TCR error code values (`L4_ipc_tcr_error` in `l4sys/include/ipc.h`).
pub mod tcr {
    /// `L4_IPC_ERROR_MASK`.
    pub const MASK: u64 = 0x1f;
    /// `L4_IPC_SND_ERR_MASK`: bit 0 set = receive phase.
    pub const RCV_BIT: u64 = 0x1;
    /// `L4_IPC_SETIMEOUT`.
    pub const SETIMEOUT: u64 = 0x02;
    /// `L4_IPC_RETIMEOUT`.
    pub const RETIMEOUT: u64 = 0x03;
    /// `L4_IPC_ENOT_EXISTENT`.
    pub const ENOT_EXISTENT: u64 = 0x04;
    /// `L4_IPC_SECANCELED`.
    pub const SECANCELED: u64 = 0x06;
    /// `L4_IPC_RECANCELED`.
    pub const RECANCELED: u64 = 0x07;
    /// `L4_IPC_SEMSGCUT`.
    pub const SEMSGCUT: u64 = 0x08;
    /// `L4_IPC_REMSGCUT`.
    pub const REMSGCUT: u64 = 0x09;
    /// `L4_IPC_SESNDPFTO`.
    pub const SESNDPFTO: u64 = 0x0a;
    /// `L4_IPC_RESNDPFTO`.
    pub const RESNDPFTO: u64 = 0x0b;
    /// `L4_IPC_SERCVPFTO`.
    pub const SERCVPFTO: u64 = 0x0c;
    /// `L4_IPC_RERCVPFTO`.
    pub const RERCVPFTO: u64 = 0x0d;
    /// `L4_IPC_SEABORTED`.
    pub const SEABORTED: u64 = 0x0e;
    /// `L4_IPC_REABORTED`.
    pub const REABORTED: u64 = 0x0f;
    /// `L4_IPC_SEMAPFAILED`.
    pub const SEMAPFAILED: u64 = 0x10;
    /// `L4_IPC_REMAPFAILED`.
    pub const REMAPFAILED: u64 = 0x11;
    /// `L4_IPC_ENO_REPLY_CAP`.
    pub const ENO_REPLY_CAP: u64 = 0x13;
}

impl IpcError {
    /// Decodes the TCR error word.
    pub fn from_tcr(err: u64) -> Self {
        let code = err & tcr::MASK;
        let phase = if code & tcr::RCV_BIT != 0 { Phase::Receive } else { Phase::Send };
        let code = match code & !tcr::RCV_BIT {
            0x02 => IpcErrorCode::Timeout,
            0x04 => IpcErrorCode::NotExistent,
            0x06 => IpcErrorCode::Canceled,
            0x08 => IpcErrorCode::MsgCut,
            0x0a => IpcErrorCode::SndPfTimeout,
            0x0c => IpcErrorCode::RcvPfTimeout,
            0x0e => IpcErrorCode::Aborted,
            0x10 => IpcErrorCode::MapFailed,
            0x12 if code == tcr::ENO_REPLY_CAP => IpcErrorCode::NoReplyCap,
            _ => IpcErrorCode::Unknown(code as u8),
        };
        // ENOT_EXISTENT (4) has no receive twin; 5 is unknown.
        let phase = if code == IpcErrorCode::NoReplyCap { Phase::Send } else { phase };
        IpcError { code, phase }
    }

    /// The TCR error word that encodes this error.
    pub fn to_tcr(self) -> u64 {
        let base = match self.code {
            IpcErrorCode::Timeout => 0x02,
            IpcErrorCode::NotExistent => 0x04,
            IpcErrorCode::Canceled => 0x06,
            IpcErrorCode::MsgCut => 0x08,
            IpcErrorCode::SndPfTimeout => 0x0a,
            IpcErrorCode::RcvPfTimeout => 0x0c,
            IpcErrorCode::Aborted => 0x0e,
            IpcErrorCode::MapFailed => 0x10,
            IpcErrorCode::NoReplyCap => return tcr::ENO_REPLY_CAP,
            IpcErrorCode::Unknown(c) => return c as u64,
        };
        match self.phase {
            Phase::Send => base,
            Phase::Receive => base | tcr::RCV_BIT,
        }
    }

    /// `l4_error()`'s number for an IPC error: `-(2000 + code)`.
    pub fn l4_error_value(self) -> i64 {
        -(2000 + self.to_tcr() as i64)
    }
}

macro_rules! errnos {
    ($($(#[$m:meta])* $name:ident = $v:expr),* $(,)?) => {
        /// Kernel error numbers returned as negative tag labels (`l4sys/include/err.h`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Errno {
            $($(#[$m])* $name,)*
            /// A number this crate does not name (positive errno value).
            Other(i64),
        }
        impl Errno {
            /// The positive errno value.
            pub fn value(self) -> i64 {
                match self { $(Errno::$name => $v,)* Errno::Other(v) => v }
            }
            /// Names an errno value (positive).
            pub fn from_value(v: i64) -> Self {
                match v { $($v => Errno::$name,)* v => Errno::Other(v) }
            }
        }
    };
}

errnos! {
    /// `L4_EPERM`: missing rights.
    Perm = 1,
    /// `L4_ENOENT`.
    NoEnt = 2,
    /// `L4_EIO`.
    Io = 5,
    /// `L4_ENXIO`.
    NxIo = 6,
    /// `L4_EAGAIN`.
    Again = 11,
    /// `L4_ENOMEM`: out of memory / quota.
    NoMem = 12,
    /// `L4_EACCESS`.
    Access = 13,
    /// `L4_EFAULT`.
    Fault = 14,
    /// `L4_EBUSY`.
    Busy = 16,
    /// `L4_EEXIST`.
    Exist = 17,
    /// `L4_ENODEV`.
    NoDev = 19,
    /// `L4_ENOTDIR`.
    NotDir = 20,
    /// `L4_EINVAL`: invalid argument.
    Inval = 22,
    /// `L4_ENOSPC`.
    NoSpc = 28,
    /// `L4_ERANGE`.
    Range = 34,
    /// `L4_ENAMETOOLONG`.
    NameTooLong = 36,
    /// `L4_ENOSYS`: operation not implemented.
    NoSys = 38,
    /// `L4_EBADPROTO`: wrong protocol label.
    BadProto = 39,
    /// `L4_EADDRNOTAVAIL`.
    AddrNotAvail = 99,
    /// `L4_ENOREPLY`.
    NoReply = 1000,
    /// `L4_EMSGTOOSHORT`: too few words.
    MsgTooShort = 1001,
    /// `L4_EMSGTOOLONG`.
    MsgTooLong = 1002,
    /// `L4_EMSGMISSARG`.
    MsgMissArg = 1003,
    /// `L4_EMSGERRRANGE`.
    MsgErrRange = 1004,
    /// `L4_EDROPREPLY`: the server dropped the reply.
    DropReply = 1005,
}

/// Everything that can go wrong when talking to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The IPC itself failed (tag error bit; code from the TCR).
    Ipc(IpcError),
    /// The object answered with a negative label (`-errno`).
    Kernel(Errno),
    /// The reply did not have the shape the protocol promises: the object (or
    /// a server pretending to be one) sent fewer words or items than needed.
    MalformedReply {
        /// The tag that came back.
        tag: MsgTag,
    },
    /// A request that cannot be encoded (e.g. more data than fits the MRs).
    /// Raised before the kernel is entered.
    RequestTooLarge,
}

impl Error {
    /// The number the C `l4_error()` would return for this error.
    pub fn l4_error_value(self) -> i64 {
        match self {
            Error::Ipc(e) => e.l4_error_value(),
            Error::Kernel(e) => -e.value(),
            Error::MalformedReply { .. } => -Errno::MsgTooShort.value(),
            Error::RequestTooLarge => -Errno::MsgTooLong.value(),
        }
    }

    /// Is this an IPC timeout (either phase)?
    pub fn is_timeout(self) -> bool {
        matches!(self, Error::Ipc(IpcError { code: IpcErrorCode::Timeout, .. }))
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Ipc(e) => write!(f, "IPC failed in {:?} phase: {:?}", e.phase, e.code),
            Error::Kernel(e) => write!(f, "object refused: {:?} (-{})", e, e.value()),
            Error::MalformedReply { tag } => write!(f, "malformed reply: {tag:?}"),
            Error::RequestTooLarge => write!(f, "request does not fit the message registers"),
        }
    }
}

/// Turns a returned tag into a result: IPC error (reading the TCR word
/// `tcr_error`), negative label, or the tag itself (`l4_error()`).
pub fn check(tag: MsgTag, tcr_error: u64) -> Result<MsgTag, Error> {
    if tag.has_error() {
        return Err(Error::Ipc(IpcError::from_tcr(tcr_error)));
    }
    let label = tag.label();
    if label < 0 {
        return Err(Error::Kernel(Errno::from_value(-label)));
    }
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcr_codes_decode_with_phase() {
        // Codes from l4sys ipc.h L4_ipc_tcr_error.
        let t = IpcError::from_tcr(0x03);
        assert_eq!(t, IpcError { code: IpcErrorCode::Timeout, phase: Phase::Receive });
        assert_eq!(IpcError::from_tcr(0x02).phase, Phase::Send);
        assert_eq!(IpcError::from_tcr(0x04).code, IpcErrorCode::NotExistent);
        assert_eq!(IpcError::from_tcr(0x07).code, IpcErrorCode::Canceled);
        assert_eq!(IpcError::from_tcr(0x09).code, IpcErrorCode::MsgCut);
        assert_eq!(IpcError::from_tcr(0x09).phase, Phase::Receive);
        assert_eq!(IpcError::from_tcr(0x11).code, IpcErrorCode::MapFailed);
        assert_eq!(IpcError::from_tcr(0x13).code, IpcErrorCode::NoReplyCap);
        // bits above the 5-bit code are ignored
        assert_eq!(IpcError::from_tcr(0xff06).code, IpcErrorCode::Canceled);
        assert_eq!(IpcError::from_tcr(0x15).code, IpcErrorCode::Unknown(0x15));
    }

    #[test]
    fn tcr_round_trip() {
        for c in 0..0x20u64 {
            let e = IpcError::from_tcr(c);
            if !matches!(e.code, IpcErrorCode::Unknown(_)) {
                assert_eq!(e.to_tcr(), c, "code {c:#x}");
            }
        }
    }

    #[test]
    fn l4_error_numbers() {
        assert_eq!(IpcError::from_tcr(0x03).l4_error_value(), -2003);
        assert_eq!(Error::Kernel(Errno::Inval).l4_error_value(), -22);
    }

    #[test]
    fn errno_values_match_err_h() {
        assert_eq!(Errno::Perm.value(), 1);
        assert_eq!(Errno::NoMem.value(), 12);
        assert_eq!(Errno::Inval.value(), 22);
        assert_eq!(Errno::NoSys.value(), 38);
        assert_eq!(Errno::BadProto.value(), 39);
        assert_eq!(Errno::MsgTooShort.value(), 1001);
        assert_eq!(Errno::from_value(39), Errno::BadProto);
        assert_eq!(Errno::from_value(77), Errno::Other(77));
    }

    #[test]
    fn check_distinguishes_channels() {
        let ok = MsgTag::new(1, 0, 0, crate::msgtag::TagFlags::empty());
        assert_eq!(check(ok, 0), Ok(ok));
        let neg = MsgTag::new(-22, 0, 0, crate::msgtag::TagFlags::empty());
        assert_eq!(check(neg, 0), Err(Error::Kernel(Errno::Inval)));
        let ipc = MsgTag(0x8000);
        assert_eq!(check(ipc, 0x04), Err(Error::Ipc(IpcError { code: IpcErrorCode::NotExistent, phase: Phase::Send })));
    }
}
