//! The fleet's revisions and statuses in etcd.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, WatchOptions,
};

use super::{now_unix, sha256_hex, FleetError, NodeStatus, Revision, ServerRecord};
use crate::config::model::FleetSettings;

/// A connection to the fleet's etcd, under its prefix.
#[derive(Clone)]
pub struct Store {
    client: Client,
    prefix: String,
    endpoints: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Store {
    /// Connects (TLS and credentials as configured), within `s.timeout`.
    pub async fn connect(s: &FleetSettings) -> Result<Store, FleetError> {
        let endpoints = s.endpoints.join(", ");
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(s.timeout)
            .with_timeout(s.timeout)
            .with_keep_alive(Duration::from_secs(10), s.timeout);
        if let Some((user, password)) = &s.credentials {
            opts = opts.with_user(user.clone(), password.clone());
        }
        if s.ca_pem.is_some() || s.client_identity.is_some() {
            let mut tls = etcd_client::TlsOptions::new();
            if let Some(ca) = &s.ca_pem {
                tls = tls.ca_certificate(etcd_client::Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &s.client_identity {
                tls = tls.identity(etcd_client::Identity::from_pem(cert, key));
            }
            opts = opts.with_tls(tls);
        }
        let connect = Client::connect(s.endpoints.clone(), Some(opts));
        let client = match tokio::time::timeout(s.timeout, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(source)) => return Err(FleetError::Etcd { endpoints, source }),
            Err(_) => {
                return Err(FleetError::Etcd {
                    endpoints,
                    source: etcd_client::Error::InvalidArgs(format!(
                        "no connection within {} ms",
                        s.timeout.as_millis()
                    )),
                })
            }
        };
        let mut store = Store {
            client,
            prefix: s.prefix.trim_end_matches('/').to_string(),
            endpoints,
        };
        // A first read: a store that does not answer fails here, not later.
        store.current().await?;
        Ok(store)
    }

    fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.prefix)
    }

    /// The key watched for new revisions.
    pub fn current_key(&self) -> String {
        self.key("config/current")
    }

    fn etcd(&self, source: etcd_client::Error) -> FleetError {
        FleetError::Etcd {
            endpoints: self.endpoints.clone(),
            source,
        }
    }

    /// The current revision and the etcd revision that wrote it.
    pub async fn current(&mut self) -> Result<Option<(Revision, i64)>, FleetError> {
        let key = self.current_key();
        match self.get_one(&key).await? {
            None => Ok(None),
            Some((value, rev)) => Ok(Some((decode(&key, &value)?, rev))),
        }
    }

    /// The value of `key` and the etcd revision that wrote it.
    async fn get_one(&mut self, key: &str) -> Result<Option<(Vec<u8>, i64)>, FleetError> {
        let resp = self.client.get(key, None).await.map_err(|e| self.etcd(e))?;
        Ok(resp
            .kvs()
            .first()
            .map(|kv| (kv.value().to_vec(), kv.mod_revision())))
    }

    /// Revision `n`.
    pub async fn revision(&mut self, n: u64) -> Result<Revision, FleetError> {
        let key = self.key(&format!("config/rev/{n:010}"));
        let resp = self
            .client
            .get(key.clone(), None)
            .await
            .map_err(|e| self.etcd(e))?;
        let kv = resp.kvs().first().ok_or(FleetError::NoRevision(n))?;
        decode(&key, kv.value())
    }

    /// Every revision, oldest first.
    pub async fn history(&mut self) -> Result<Vec<Revision>, FleetError> {
        Ok(self
            .list("config/rev/")
            .await?
            .into_iter()
            .map(|(_, v, _)| v)
            .collect())
    }

    /// Every value under `rest`, decoded, in key order: (key, value, etcd
    /// revision that wrote it).
    async fn list<T: serde::de::DeserializeOwned>(
        &mut self,
        rest: &str,
    ) -> Result<Vec<(String, T, i64)>, FleetError> {
        let key = self.key(rest);
        let resp = self
            .client
            .get(key, Some(GetOptions::new().with_prefix()))
            .await
            .map_err(|e| self.etcd(e))?;
        resp.kvs()
            .iter()
            .map(|kv| {
                let k = String::from_utf8_lossy(kv.key()).into_owned();
                let v = decode(&k, kv.value())?;
                Ok((k, v, kv.mod_revision()))
            })
            .collect()
    }

    /// Stores `document` as the next revision, if the current one is still
    /// `expected` (None: the one read now; 0: there must be none yet).
    pub async fn push(
        &mut self,
        document: &str,
        author: &str,
        message: &str,
        expected: Option<u64>,
    ) -> Result<Revision, FleetError> {
        let current = self.current().await?;
        let (now, mod_rev) = current.as_ref().map_or((0, 0), |(r, m)| (r.revision, *m));
        if let Some(e) = expected {
            if e != now {
                return Err(FleetError::Conflict {
                    expected: e,
                    current: now,
                });
            }
        }
        let rev = Revision {
            revision: now + 1,
            hash: sha256_hex(document.as_bytes()),
            author: author.to_string(),
            time_unix: now_unix(),
            message: message.to_string(),
            document: document.to_string(),
        };
        let value = serde_json::to_vec(&rev).map_err(|e| FleetError::Settings(e.to_string()))?;
        let current_key = self.current_key();
        // Compare-and-swap: `config/current` unchanged since it was read
        // (mod revision 0: the key does not exist).
        let txn = Txn::new()
            .when([Compare::mod_revision(
                current_key.clone(),
                CompareOp::Equal,
                mod_rev,
            )])
            .and_then([
                TxnOp::put(current_key, value.clone(), None),
                TxnOp::put(self.key(&format!("config/rev/{:010}", rev.revision)), value, None),
            ]);
        let resp = self.client.txn(txn).await.map_err(|e| self.etcd(e))?;
        if !resp.succeeded() {
            let current = self.current().await?.map_or(0, |(r, _)| r.revision);
            return Err(FleetError::Conflict {
                expected: now,
                current,
            });
        }
        Ok(rev)
    }

    /// Writes what this node runs.
    pub async fn set_status(&mut self, status: &NodeStatus) -> Result<(), FleetError> {
        let value = serde_json::to_vec(status).map_err(|e| FleetError::Settings(e.to_string()))?;
        let key = self.key(&format!("status/{}", status.node));
        self.client
            .put(key, value, None)
            .await
            .map_err(|e| self.etcd(e))?;
        Ok(())
    }

    /// What every node said it runs, by node name.
    pub async fn statuses(&mut self) -> Result<Vec<NodeStatus>, FleetError> {
        Ok(self
            .list("status/")
            .await?
            .into_iter()
            .map(|(_, v, _)| v)
            .collect())
    }

    /// Every server's runtime changes: (pool, server, record, etcd
    /// revision of the record).
    pub async fn runtime_records(&mut self) -> Result<Vec<(String, String, ServerRecord, i64)>, FleetError> {
        let all = self.list::<ServerRecord>("runtime/").await?;
        Ok(all
            .into_iter()
            .filter_map(|(k, r, rev)| self.runtime_key(&k).map(|(p, s)| (p, s, r, rev)))
            .collect())
    }

    /// (pool, server) of a `runtime/POOL/SERVER` key.
    pub fn runtime_key(&self, key: &str) -> Option<(String, String)> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix("/runtime/")?;
        let (pool, server) = rest.split_once('/')?;
        Some((pool.to_string(), server.to_string()))
    }

    /// Writes one server's record if nobody changed it since etcd
    /// revision `seen` (0: it did not exist); the revision written.
    pub async fn put_record(
        &mut self,
        pool: &str,
        server: &str,
        record: &ServerRecord,
        seen: i64,
    ) -> Result<i64, FleetError> {
        let key = self.key(&format!("runtime/{pool}/{server}"));
        let value = serde_json::to_vec(record).map_err(|e| FleetError::Settings(e.to_string()))?;
        let txn = Txn::new()
            .when([Compare::mod_revision(key.clone(), CompareOp::Equal, seen)])
            .and_then([TxnOp::put(key.clone(), value, None)])
            .or_else([TxnOp::get(key.clone(), None)]);
        let resp = self.client.txn(txn).await.map_err(|e| self.etcd(e))?;
        if !resp.succeeded() {
            let current = match resp.op_responses().into_iter().next() {
                Some(etcd_client::TxnOpResponse::Get(g)) => g.kvs().first().and_then(|kv| {
                    serde_json::from_slice::<ServerRecord>(kv.value())
                        .ok()
                        .map(|r| Box::new((r, kv.mod_revision())))
                }),
                _ => None,
            };
            return Err(FleetError::ChangedElsewhere {
                pool: pool.to_string(),
                server: server.to_string(),
                by: current
                    .as_ref()
                    .map_or_else(|| "?".to_string(), |c| c.0.by.clone()),
                current,
            });
        }
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    /// Watches every key of the fleet after etcd revision `after`.
    pub async fn watch_all(&mut self, after: i64) -> Result<etcd_client::WatchStream, FleetError> {
        let key = format!("{}/", self.prefix);
        let opts = WatchOptions::new().with_prefix().with_start_revision(after + 1);
        self.client.watch(key, Some(opts)).await.map_err(|e| self.etcd(e))
    }

    /// What a watched key's change means.
    pub fn update(&self, key: &[u8], value: &[u8], mod_revision: i64) -> Option<Update> {
        let key = String::from_utf8_lossy(key);
        if key == self.current_key() {
            return serde_json::from_slice(value).ok().map(Update::Revision);
        }
        if let Some(rest) = key
            .strip_prefix(&self.prefix)
            .and_then(|k| k.strip_prefix("/acme/challenge/"))
        {
            let (kind, id) = rest.split_once('/')?;
            return Some(Update::Challenge {
                kind: kind.to_string(),
                id: id.to_string(),
                answer: (!value.is_empty()).then(|| String::from_utf8_lossy(value).into_owned()),
            });
        }
        let (pool, server) = self.runtime_key(&key)?;
        let record = if value.is_empty() {
            ServerRecord::default()
        } else {
            serde_json::from_slice(value).ok()?
        };
        Some(Update::Server {
            pool,
            server,
            record,
            mod_revision,
        })
    }

    /// The sealed value at `rest`, opened with `secret`.
    pub async fn get_sealed(&mut self, secret: &[u8; 32], rest: &str) -> Result<Option<Vec<u8>>, FleetError> {
        let key = self.key(rest);
        match self.get_one(&key).await? {
            None => Ok(None),
            Some((value, _)) => super::seal::open(secret, &key, &value).map(Some),
        }
    }

    /// Seals `plain` with `secret` and stores it at `rest`.
    pub async fn put_sealed(
        &mut self,
        secret: &[u8; 32],
        rest: &str,
        plain: &[u8],
    ) -> Result<(), FleetError> {
        let key = self.key(rest);
        let sealed = super::seal::seal(secret, &key, plain)?;
        self.client
            .put(key, sealed, None)
            .await
            .map_err(|e| self.etcd(e))?;
        Ok(())
    }

    /// Seals `plain` and stores it at `rest` unless something is there
    /// already; whether it was stored.
    pub async fn put_sealed_if_absent(
        &mut self,
        secret: &[u8; 32],
        rest: &str,
        plain: &[u8],
    ) -> Result<bool, FleetError> {
        let key = self.key(rest);
        let sealed = super::seal::seal(secret, &key, plain)?;
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, sealed, None)]);
        let resp = self.client.txn(txn).await.map_err(|e| self.etcd(e))?;
        Ok(resp.succeeded())
    }

    /// Stores `value` at `rest` (None: deletes it) for as long as `lead`
    /// holds its lease.
    pub async fn put_under(
        &mut self,
        lead: &Lead,
        rest: &str,
        value: Option<&str>,
    ) -> Result<(), FleetError> {
        let key = self.key(rest);
        let result = match value {
            Some(v) => self
                .client
                .put(key, v, Some(PutOptions::new().with_lease(lead.lease)))
                .await
                .map(|_| ()),
            None => self.client.delete(key, None).await.map(|_| ()),
        };
        result.map_err(|e| self.etcd(e))
    }

    /// Takes `rest` for `node` while this process lives and keeps the
    /// lease alive (`ttl` seconds: a holder that dies loses it that much
    /// later); None when another node holds it.
    pub async fn lead(&mut self, rest: &str, node: &str, ttl: i64) -> Result<Option<Lead>, FleetError> {
        let key = self.key(rest);
        let lease = self
            .client
            .lease_grant(ttl, None)
            .await
            .map_err(|e| self.etcd(e))?
            .id();
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, node, Some(PutOptions::new().with_lease(lease)))]);
        let won = match self.client.txn(txn).await {
            Ok(r) => r.succeeded(),
            Err(e) => {
                let _ = self.client.lease_revoke(lease).await;
                return Err(self.etcd(e));
            }
        };
        if !won {
            let _ = self.client.lease_revoke(lease).await;
            return Ok(None);
        }
        let mut client = self.client.clone();
        let keeper = tokio::spawn(async move {
            let Ok((mut keeper, mut responses)) = client.lease_keep_alive(lease).await else {
                return;
            };
            let every = Duration::from_secs(u64::try_from(ttl / 3).unwrap_or(1).max(1));
            loop {
                tokio::time::sleep(every).await;
                if keeper.keep_alive().await.is_err() || !matches!(responses.message().await, Ok(Some(_))) {
                    tracing::warn!("fleet: a lease could not be renewed; it ends within {ttl} s");
                    return;
                }
            }
        });
        Ok(Some(Lead {
            lease,
            client: self.client.clone(),
            keeper,
        }))
    }

    /// How many members etcd's cluster has.
    pub async fn members(&mut self) -> Result<usize, FleetError> {
        let resp = self.client.member_list().await.map_err(|e| self.etcd(e))?;
        Ok(resp.members().len())
    }

    /// The etcd revision now (what a watch starts after).
    pub async fn etcd_revision(&mut self) -> Result<i64, FleetError> {
        let resp = self
            .client
            .get(self.key("config/current"), None)
            .await
            .map_err(|e| self.etcd(e))?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, FleetError> {
    serde_json::from_slice(value).map_err(|e| FleetError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// A key held by this instance under an etcd lease, renewed until this is
/// dropped; then the lease is revoked (its keys vanish at once).
pub struct Lead {
    lease: i64,
    client: Client,
    keeper: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Lead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lead").field("lease", &self.lease).finish()
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        self.keeper.abort();
        let (mut client, lease) = (self.client.clone(), self.lease);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = client.lease_revoke(lease).await;
            });
        }
    }
}

/// A change seen in the fleet's keys.
#[derive(Debug, Clone)]
pub enum Update {
    /// A new current revision.
    Revision(Revision),
    /// One server's runtime changes (its record; empty when deleted).
    Server {
        pool: String,
        server: String,
        record: ServerRecord,
        mod_revision: i64,
    },
    /// An ACME challenge answer published by the instance ordering
    /// (`kind` tls-alpn-01: `id` a name, the answer its digest in hex;
    /// http-01: `id` a token, the answer its key authorization); None:
    /// withdrawn.
    Challenge {
        kind: String,
        id: String,
        answer: Option<String>,
    },
}
