//! The uploader record of each user (`meta` key `leader:{userId}`): who uploads, its
//! generation (fencing the previous uploader), and its heartbeat. See `domain::lease`.

use super::queue::Lead;
use super::records::{decode_leader, encode_leader, leader_key, META};
use super::{deadline, Store};
use crate::domain::lease::Beat;
use crate::domain::Result;
use crate::platform::idb::{error, Mode, Request};
use crate::platform::now;

impl Store {
    /// The uploader record of `user`, if any.
    pub async fn leader(&self, user: &str) -> Result<Option<Beat>> {
        const OP: &str = "reading the uploader record";
        deadline(OP, async {
            let tx = self.db().begin(&[META], Mode::Read, OP).await?;
            let result = async { Ok(decode_leader(&Request::of(tx.store(META)?.get(leader_key(user)), OP)?.await?)) }.await;
            tx.finish(result).await
        })
        .await
    }

    /// Makes `owner` the uploader of `user` with the next generation, if the record still is
    /// what the caller saw (`expected`: compare-and-set; `None` takes it whatever it holds,
    /// for a context granted the Web Lock). Returns the new lead, or `None` if the record
    /// changed meanwhile (another context took it first).
    pub async fn take_lead(&self, user: &str, owner: &str, expected: Option<&Option<Beat>>) -> Result<Option<Lead>> {
        const OP: &str = "taking the uploads over";
        deadline(OP, async {
            let tx = self.db().begin(&[META], Mode::Strict, OP).await?;
            let result = async {
                let meta = tx.store(META)?;
                let current = decode_leader(&Request::of(meta.get(leader_key(user)), OP)?.await?);
                if expected.is_some_and(|e| *e != current) {
                    return Ok(None);
                }
                let gen = current.map_or(0, |b| b.gen) + 1;
                let beat = Beat { owner: owner.to_owned(), gen, beat: 0 };
                meta.put(&encode_leader(&beat, now()), Some(&leader_key(user))).map_err(error(OP))?;
                Ok(Some(Lead { owner: owner.to_owned(), gen }))
            }
            .await;
            tx.finish(result).await
        })
        .await
    }

    /// The uploader's heartbeat: renews the record while it still names `lead`. `false`: it
    /// names another context (this one was fenced off: its lock was stolen, or its record
    /// wiped and taken), or it is gone.
    pub async fn beat(&self, user: &str, lead: &Lead) -> Result<bool> {
        const OP: &str = "writing the uploader heartbeat";
        deadline(OP, async {
            let tx = self.db().begin(&[META], Mode::Relaxed, OP).await?;
            let result = async {
                let meta = tx.store(META)?;
                let Some(mut b) = decode_leader(&Request::of(meta.get(leader_key(user)), OP)?.await?) else { return Ok(false) };
                if b.owner != lead.owner || b.gen != lead.gen {
                    return Ok(false);
                }
                b.beat += 1;
                meta.put(&encode_leader(&b, now()), Some(&leader_key(user))).map_err(error(OP))?;
                Ok(true)
            }
            .await;
            tx.finish(result).await
        })
        .await
    }

    /// Gives the uploads of `user` up (only if the record names `lead`), so a follower need not
    /// wait for the heartbeat to stop. The record stays, with no owner: generations only grow.
    pub async fn release_lead(&self, user: &str, lead: &Lead) -> Result<()> {
        const OP: &str = "handing the uploads over";
        deadline(OP, async {
            let tx = self.db().begin(&[META], Mode::Relaxed, OP).await?;
            let result = async {
                let meta = tx.store(META)?;
                let current = decode_leader(&Request::of(meta.get(leader_key(user)), OP)?.await?);
                if let Some(mut b) = current.filter(|b| b.owner == lead.owner && b.gen == lead.gen) {
                    b.owner.clear();
                    meta.put(&encode_leader(&b, now()), Some(&leader_key(user))).map_err(error(OP))?;
                }
                Ok(())
            }
            .await;
            tx.finish(result).await
        })
        .await
    }
}
