//! The fleet's etcd as the place ACME listeners share what they get
//! ([`crate::tls::acme::Shared`]): certificates, their keys and the account
//! sealed with `[fleet] secret_key_file`, the right to order held under an
//! etcd lease, challenge answers published under that lease. Its own
//! connection to etcd, made when first needed and again after an error.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::Mutex;

use crate::config::model::FleetSettings;
use crate::fleet::{FleetError, Lead, Store};
use crate::tls::acme;

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
