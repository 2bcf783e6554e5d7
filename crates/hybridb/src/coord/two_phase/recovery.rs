//! Recovery of in-doubt transactions from the log: a transaction decided `Committing` is
//! finished (commit) at every participant, an undecided one is aborted; the built-in
//! participant finds its staged writes in the log. Transactions this process is still driving
//! are left alone. At open, those whose only participant is hybridb itself are resolved
//! ([`resolve_on_open`]); the others wait for [`Database::recover_transactions`], which takes
//! the user participants by name.

use crate::coord::log::{TxnRecord, TxnState};
use crate::db::handle::Database;
use crate::model::error::Result;
use crate::model::retry::RetryPolicy;
use crate::model::sync::lock;
use crate::store::schema::{COORD_STAGED, COORD_TXNS};
use redb::ReadableTable;
use std::sync::Arc;

use super::*;

/// The built-in participant as recovery sees it: it finds the staged batches in the log.
pub(super) struct StoreRecovery {
    db: Database,
}

pub(super) fn store_participant(db: &Database) -> StoreRecovery {
    StoreRecovery { db: db.clone() }
}

impl Participant for StoreRecovery {
    fn name(&self) -> &str {
        STORE
    }

    fn prepare(&self, _txid: u64) -> Result<Vote> {
        Ok(Vote::Abort(
            "the writes of this transaction are gone".into(),
        ))
    }

    fn commit(&self, txid: u64) -> Result<()> {
        crate::coord::call(self.db.inner(), move |s| commit_store(s, txid))
    }

    fn abort(&self, txid: u64) -> Result<()> {
        crate::coord::call(self.db.inner(), move |s| {
            let txn = s.redb()?.begin_write()?;
            let removed = txn.open_table(COORD_STAGED)?.remove(txid)?.is_some();
            if removed {
                crate::coord::commit_immediate(s, txn)?;
            }
            Ok(())
        })
    }
}

/// Run by every open (wired in `crate::ON_OPEN`): transactions involving only hybridb
/// collections need no user code, so they are resolved now; a failure leaves them in doubt for
/// [`Database::recover_transactions`], as before.
pub(crate) fn resolve_on_open(db: &Database) {
    match db.recover_builtin_transactions() {
        Ok(r) if r.committed.len() + r.aborted.len() + r.unresolved.len() > 0 => {
            tracing::info!(
                committed = r.committed.len(),
                aborted = r.aborted.len(),
                unresolved = r.unresolved.len(),
                "hybridb resolved in-doubt transactions on open"
            );
        }
        Ok(_) => {}
        Err(e) => crate::observe::background_error("recover_transactions", &e),
    }
}

impl Database {
    /// Every transaction in the coordinator's log, oldest first.
    pub fn transactions(&self) -> Result<Vec<TxnInfo>> {
        let txn = self.shared().begin_read()?;
        let table = txn.open_table(COORD_TXNS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let rec = TxnRecord::decode(v.value())?;
            out.push(TxnInfo {
                txid: k.value(),
                state: rec.state,
                participants: rec.participants,
                reason: rec.reason,
            });
        }
        Ok(out)
    }

    /// Finishes every transaction left unfinished by a crash (or by participants that did
    /// not acknowledge): a logged commit decision is re-sent to every participant, an
    /// undecided transaction is decided abort (logged) and abort is sent to all. Opening the
    /// database already resolves the transactions that involve only hybridb collections; call
    /// this after [`Database::open`] with the user participants that may appear in the log
    /// (matched by [`Participant::name`]); the built-in one is always known. Transactions naming a
    /// participant not supplied stay in doubt and are reported. Transactions this process is
    /// running right now are left alone.
    pub fn recover_transactions(
        &self,
        participants: &[Arc<dyn Participant>],
    ) -> Result<RecoveryReport> {
        self.recover_transactions_with(participants, TwoPhaseOptions::default().phase2_retry)
    }

    /// [`Database::recover_transactions`] with a retry policy for the re-sent calls.
    pub fn recover_transactions_with(
        &self,
        participants: &[Arc<dyn Participant>],
        retry: RetryPolicy,
    ) -> Result<RecoveryReport> {
        self.observe(crate::observe::Op::RecoverTransactions, || {
            self.recover_transactions_unobserved(participants, retry)
        })
    }

    /// Resolves, at open, the unfinished transactions whose only participant is the built-in
    /// one (no user code is needed for them); those with user participants wait for
    /// [`Database::recover_transactions`], undecided as they are.
    pub(crate) fn recover_builtin_transactions(&self) -> Result<RecoveryReport> {
        self.recover_some(&[], TwoPhaseOptions::default().phase2_retry, true)
    }

    fn recover_transactions_unobserved(
        &self,
        participants: &[Arc<dyn Participant>],
        retry: RetryPolicy,
    ) -> Result<RecoveryReport> {
        self.recover_some(participants, retry, false)
    }

    fn recover_some(
        &self,
        participants: &[Arc<dyn Participant>],
        retry: RetryPolicy,
        builtin_only: bool,
    ) -> Result<RecoveryReport> {
        let mut report = RecoveryReport::default();
        let store: Arc<dyn Participant> = Arc::new(store_participant(self));
        for info in self.transactions()? {
            if info.state.is_final() || lock(&self.shared().coord.live_txns).contains(&info.txid) {
                continue;
            }
            if builtin_only && info.participants.iter().any(|p| p != STORE) {
                continue;
            }
            let txid = info.txid;
            let commit = info.state == TxnState::Committing;
            if info.state == TxnState::Active {
                set_state(
                    self,
                    txid,
                    TxnState::Aborting,
                    Some("undecided when the coordinator stopped".into()),
                )?;
            }
            let mut missing = Vec::new();
            for name in &info.participants {
                let p = if name == STORE {
                    Some(&store)
                } else {
                    participants.iter().find(|p| p.name() == name)
                };
                match p {
                    Some(p) if finish(p.as_ref(), txid, commit, retry).is_ok() => {}
                    _ => missing.push(name.clone()),
                }
            }
            if !missing.is_empty() {
                report.unresolved.push((txid, missing));
                continue;
            }
            let done = if commit {
                TxnState::Committed
            } else {
                TxnState::Aborted
            };
            set_state(self, txid, done, None)?;
            if commit {
                report.committed.push(txid);
            } else {
                report.aborted.push(txid);
            }
        }
        Ok(report)
    }
}
