//! The fleet's etcd as the place ACME listeners share what they get
//! ([`crate::tls::acme::Shared`]): certificates, their keys and the account
//! sealed with `[fleet] secret_key_file`, the right to order held under an
//! etcd lease, challenge answers published under that lease. Its own
//! connection to etcd, made when first needed and again after an error.
//! Also [`share_ca`]: one internal CA for the fleet.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::Mutex;

use crate::config::model::FleetSettings;
use crate::fleet::{FleetError, Lead, Store};
use crate::tls::acme;

/// The key of the fleet's internal CA.
const CA_KEY: &str = "ca/internal";

/// Makes the fleet's internal CA this instance's (in `state_dir`): the one
/// in etcd when there is one, else this instance's own (created if needed)
/// becomes the fleet's; of two instances racing, the first stored wins and
/// the other takes it. Nothing to do without `secret_key_file`. Whether
/// the local CA was replaced.
pub async fn share_ca(settings: &FleetSettings, state_dir: &std::path::Path) -> Result<bool, String> {
    let Some(secret) = settings.secret_key else {
        return Ok(false);
    };
    let e = |e: FleetError| e.to_string();
    let mut store = Store::connect(settings).await.map_err(e)?;
    let install = |bytes: &[u8]| -> Result<bool, String> {
        let b: CaBundle = serde_json::from_slice(bytes).map_err(|e| format!("{CA_KEY} in etcd: {e}"))?;
        crate::tls::ca::install_ca(state_dir, b.cert.as_bytes(), b.key.as_bytes()).map_err(|e| e.to_string())
    };
    if let Some(bytes) = store.get_sealed(&secret, CA_KEY).await.map_err(e)? {
        return install(&bytes);
    }
    crate::tls::ca::ensure_ca(state_dir).map_err(|e| e.to_string())?;
    let (cert, key) = crate::tls::ca::ca_pem(state_dir).ok_or("the internal CA cannot be read")?;
    let bundle = CaBundle {
        cert: String::from_utf8_lossy(&cert).into_owned(),
        key: String::from_utf8_lossy(&key).into_owned(),
    };
    let value = serde_json::to_vec(&bundle).map_err(|e| e.to_string())?;
    if store
        .put_sealed_if_absent(&secret, CA_KEY, &value)
        .await
        .map_err(e)?
    {
        return Ok(false);
    }
    match store.get_sealed(&secret, CA_KEY).await.map_err(e)? {
        Some(bytes) => install(&bytes),
        None => Err(format!("{CA_KEY} vanished from etcd")),
    }
}

/// The internal CA as the fleet keeps it (sealed).
#[derive(serde::Serialize, serde::Deserialize)]
struct CaBundle {
    cert: String,
    key: String,
}

/// How long the right to order outlives an instance that dies holding it.
const LEAD_TTL_SECONDS: i64 = 10;

#[derive(Debug)]
pub struct FleetAcme {
    settings: FleetSettings,
    secret: [u8; 32],
    store: Arc<Mutex<Option<Store>>>,
}

impl FleetAcme {
    /// None without `secret_key_file` (the configuration check refuses a
    /// fleet with ACME listeners and no key).
    pub fn new(settings: &FleetSettings) -> Option<FleetAcme> {
        Some(FleetAcme {
            secret: settings.secret_key?,
            settings: settings.clone(),
            store: Arc::default(),
        })
    }

    async fn with_store<T>(
        &self,
        f: impl for<'a> FnOnce(&'a mut Store) -> BoxFuture<'a, Result<T, FleetError>>,
    ) -> Result<T, String> {
        let mut slot = self.store.lock().await;
        if slot.is_none() {
            *slot = Some(Store::connect(&self.settings).await.map_err(|e| e.to_string())?);
        }
        let Some(store) = slot.as_mut() else {
            return Err("no connection to etcd".into());
        };
        let result = f(store).await;
        if matches!(result, Err(FleetError::Etcd { .. })) {
            *slot = None;
        }
        result.map_err(|e| e.to_string())
    }
}

impl acme::Shared for FleetAcme {
    fn load(&self, name: String) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>> {
        Box::pin(async move {
            let secret = self.secret;
            self.with_store(move |s| Box::pin(async move { s.get_sealed(&secret, &name).await }))
                .await
        })
    }

    fn store(&self, name: String, value: Vec<u8>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let secret = self.secret;
            self.with_store(move |s| Box::pin(async move { s.put_sealed(&secret, &name, &value).await }))
                .await
        })
    }

    fn lead(&self, name: String) -> BoxFuture<'_, Result<Option<Box<dyn acme::Lead>>, String>> {
        Box::pin(async move {
            let node = self.settings.node.clone();
            let lead = self
                .with_store(move |s| Box::pin(async move { s.lead(&name, &node, LEAD_TTL_SECONDS).await }))
                .await?;
            Ok(lead.map(|lead| {
                Box::new(Held {
                    lead,
                    store: self.store.clone(),
                }) as Box<dyn acme::Lead>
            }))
        })
    }
}

/// The right to order, held.
struct Held {
    lead: Lead,
    store: Arc<Mutex<Option<Store>>>,
}

impl acme::Lead for Held {
    fn publish(
        &self,
        kind: &'static str,
        id: String,
        answer: Option<String>,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let mut slot = self.store.lock().await;
            let Some(store) = slot.as_mut() else {
                return Err("no connection to etcd".into());
            };
            store
                .put_under(
                    &self.lead,
                    &format!("acme/challenge/{kind}/{id}"),
                    answer.as_deref(),
                )
                .await
                .map_err(|e| e.to_string())
        })
    }
}
