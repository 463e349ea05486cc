//! A fake kernel behind the seam: records every kernel entry with the UTCB
//! words it carried, and answers from a script.
//!
//! Why: the protocol encoders must be checked word for word against the
//! public headers without a kernel and without the model, and code above
//! l4-sys (rtcr-core) can test its error paths by scripting any answer the
//! kernel could give. Enabled for this crate's tests and by the `fake` feature.

extern crate std;
use std::collections::VecDeque;
use std::vec::Vec;

use crate::kernel::{Invocation, Kernel, Outcome};
use crate::msgtag::MsgTag;
use crate::utcb::Utcb;

/// One recorded kernel entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The registers.
    pub inv: Invocation,
    /// The UTCB as it was at entry.
    pub utcb: Utcb,
}

impl Entry {
    /// The message registers the tag covers (words and items).
    pub fn mrs(&self) -> &[u64] {
        let n = self.inv.tag.mr_len().min(crate::utcb::MR_COUNT);
        &self.utcb.mr[..n]
    }
    /// The untyped words only.
    pub fn words(&self) -> &[u64] {
        &self.utcb.mr[..self.inv.tag.words()]
    }
    /// The typed item words only (pairs after the untyped words).
    pub fn items(&self) -> &[u64] {
        &self.utcb.mr[self.inv.tag.words()..self.inv.tag.mr_len()]
    }
}

/// A scripted answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Tag to return.
    pub tag: MsgTag,
    /// Label to return.
    pub label: u64,
    /// Words written into MR0.. before returning.
    pub mrs: Vec<u64>,
    /// Value written into the TCR error word.
    pub tcr_error: u64,
}

/// The fake kernel. Unscripted entries are answered with an empty success
/// (tag 0, label 0).
#[derive(Default)]
pub struct FakeKernel {
    utcb: Utcb,
    /// Every entry so far, oldest first.
    pub log: Vec<Entry>,
    script: VecDeque<Answer>,
}

impl FakeKernel {
    /// A fake with an empty script.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues an answer: return `tag`/`label` with `mrs` in MR0...
    pub fn answer(&mut self, tag: MsgTag, label: u64, mrs: &[u64]) -> &mut Self {
        self.script.push_back(Answer { tag, label, mrs: mrs.to_vec(), tcr_error: 0 });
        self
    }

    /// Queues an IPC failure with TCR error code `code`.
    pub fn answer_ipc_error(&mut self, code: u64) -> &mut Self {
        self.script.push_back(Answer { tag: MsgTag(0x8000), label: 0, mrs: Vec::new(), tcr_error: code });
        self
    }

    /// The most recent entry.
    pub fn last(&self) -> &Entry {
        self.log.last().expect("no kernel entry recorded")
    }
}

impl Kernel for FakeKernel {
    fn utcb(&mut self) -> &mut Utcb {
        &mut self.utcb
    }

    fn invoke(&mut self, inv: Invocation) -> Outcome {
        self.log.push(Entry { inv, utcb: self.utcb.clone() });
        let a = self.script.pop_front().unwrap_or(Answer { tag: MsgTag(0), label: 0, mrs: Vec::new(), tcr_error: 0 });
        self.utcb.mr[..a.mrs.len()].copy_from_slice(&a.mrs);
        self.utcb.tcr_error = a.tcr_error;
        Outcome { tag: a.tag, label: a.label }
    }
}
