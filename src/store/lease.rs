//! The uploader record of each user (`meta` key `leader:{userId}`): who uploads, its
//! generation (fencing the previous uploader), and its heartbeat. See `domain::lease`.
//! Every operation on it is one read and at most one write, in one transaction.

use super::queue::Lead;
use super::records::{decode_leader, encode_leader, leader_key, META};
use super::Store;
use crate::domain::lease::Beat;
use crate::domain::Result;
use crate::platform::idb::{error, Mode, Round};
use crate::platform::now;

/// What to do with the record.
enum Act<'a> {
    Read,
    /// Take it with the next generation, if it still is what the caller saw (`Some`).
    Take(&'a str, Option<&'a Option<Beat>>),
    /// Renew the heartbeat, while it names this lead.
    Beat(&'a Lead),
    /// Leave it with no owner, while it names this lead (generations only grow).
    Release(&'a Lead),
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The record still named this uploader: renewed.
    Renewed,
    /// It names another context: this one was fenced off (its lock was stolen, or its record
    /// wiped and taken).
    TakenOver,
    /// There is no record at all: the database was wiped under this context (site data cleared).
    Gone,
}

impl Renewal {
    /// Why the uploads of `user` stop here, for the log.
    pub fn lost(self, user: &str) -> String {
        match self {
            Renewal::Gone => format!("the uploader record of user {user} is gone (site data cleared?): this context stops uploading and campaigns again"),
            _ => format!("another context took over the uploads of user {user}"),
        }
    }
}

impl Store {
    /// Runs `act` on `user`'s record; returns the record as it now stands, and whether `act` wrote it.
    async fn leader_record(&self, user: &str, act: Act<'_>) -> Result<(Option<Beat>, bool)> {
        let (op, mode) = match act {
            Act::Read => ("reading the uploader record", Mode::Read),
            Act::Take(..) => ("taking the uploads over", Mode::Strict),
            Act::Beat(_) => ("writing the uploader heartbeat", Mode::Relaxed),
            Act::Release(_) => ("handing the uploads over", Mode::Relaxed),
        };
        let tx = self.db().begin(&[META], mode, op).await?;
        tx.run(async {
            let meta = tx.store(META)?;
            let mut round = Round::new(op);
            let read = round.ask(meta.get(leader_key(user)))?;
            round.done().await?;
            let current = decode_leader(&read.value());
            let ours = |lead: &Lead| current.as_ref().is_some_and(|b| b.owner == lead.owner && b.gen == lead.gen);
            let next = match act {
                Act::Read => None,
                Act::Take(owner, expected) if expected.is_none_or(|e| *e == current) => {
                    Some(Beat { owner: owner.to_owned(), gen: current.as_ref().map_or(0, |b| b.gen) + 1, beat: 0 })
                }
                Act::Take(..) => None,
                Act::Beat(lead) if ours(lead) => current.clone().map(|b| Beat { beat: b.beat + 1, ..b }),
                Act::Release(lead) if ours(lead) => current.clone().map(|b| Beat { owner: String::new(), ..b }),
                Act::Beat(_) | Act::Release(_) => None,
            };
            match next {
                Some(b) => {
                    meta.put(&encode_leader(&b, now()), Some(&leader_key(user))).map_err(error(op))?;
                    Ok((Some(b), true))
                }
                None => Ok((current, false)),
            }
        })
        .await
    }

    /// The uploader record of `user`, if any.
    pub async fn leader(&self, user: &str) -> Result<Option<Beat>> {
        Ok(self.leader_record(user, Act::Read).await?.0)
    }

    /// Makes `owner` the uploader of `user` with the next generation, if the record still is
    /// what the caller saw (`expected`: compare-and-set; `None` takes it whatever it holds,
    /// for a context granted the Web Lock). Returns the new lead, or `None` if the record
    /// changed meanwhile (another context took it first).
    pub async fn take_lead(&self, user: &str, owner: &str, expected: Option<&Option<Beat>>) -> Result<Option<Lead>> {
        let (record, written) = self.leader_record(user, Act::Take(owner, expected)).await?;
        Ok(record.filter(|_| written).map(|b| Lead { owner: b.owner, gen: b.gen }))
    }

    /// The uploader's heartbeat: renews the record while it still names `lead`.
    pub async fn beat(&self, user: &str, lead: &Lead) -> Result<Renewal> {
        Ok(match self.leader_record(user, Act::Beat(lead)).await? {
            (_, true) => Renewal::Renewed,
            (Some(_), false) => Renewal::TakenOver,
            (None, false) => Renewal::Gone,
        })
    }

    /// Gives the uploads of `user` up (only if the record names `lead`), so a follower need not
    /// wait for the heartbeat to stop. The record stays, with no owner: generations only grow.
    pub async fn release_lead(&self, user: &str, lead: &Lead) -> Result<()> {
        self.leader_record(user, Act::Release(lead)).await.map(drop)
    }
}
