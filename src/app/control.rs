//! The application's side of the admin API: [`crate::admin::Control`] for
//! a running [`App`], with its refusals sorted into the admin API's kinds.

use std::sync::Arc;

use super::{AddedServer, App, ChangeError};
use crate::admin::{AdminError, Control, NewServer};

impl Control for Arc<App> {
    async fn reload(&self) -> Result<serde_json::Value, String> {
        let report = App::reload(self).await.map_err(|e| e.to_string())?;
        serde_json::to_value(report).map_err(|e| e.to_string())
    }

    async fn add_server(&self, s: NewServer) -> Result<(), AdminError> {
        let target = format!("{}/{}", s.pool, s.name);
        let detail = s.address.to_string();
        let added = AddedServer {
            pool: s.pool,
            name: s.name,
            address: s.address,
            weight: s.weight,
            max_requests: s.max_requests,
        };
        App::add_server(self, added).await.map_err(refusal)?;
        self.journal().changed("add", target, detail);
        Ok(())
    }

    async fn set_weight(&self, pool: &str, server: &str, weight: u32) -> Result<(), AdminError> {
        App::set_weight(self, pool, server, weight)
            .await
            .map_err(refusal)?;
        self.journal()
            .changed("weight", format!("{pool}/{server}"), format!("weight {weight}"));
        Ok(())
    }

    async fn drain(&self, pool: &str, server: &str) -> Result<(), AdminError> {
        App::drain(self, pool, server).await.map_err(refusal)?;
        self.journal().changed("drain", format!("{pool}/{server}"), "");
        Ok(())
    }

    async fn undrain(&self, pool: &str, server: &str) -> Result<bool, AdminError> {
        let was = App::undrain(self, pool, server).await.map_err(refusal)?;
        self.journal().changed("undrain", format!("{pool}/{server}"), "");
        Ok(was)
    }

    async fn plan_svg(&self) -> Option<String> {
        let plan = crate::plan::plan(&self.state.lock().await.model)?;
        Some(crate::plan::svg(&plan))
    }

    async fn remove(&self, pool: &str, server: &str) -> Result<(), AdminError> {
        App::remove(self, pool, server).await.map_err(refusal)?;
        self.journal().changed("remove", format!("{pool}/{server}"), "");
        Ok(())
    }

    async fn config_view(&self) -> serde_json::Value {
        let model = self.state.lock().await.model.clone();
        let journal = self.journal();
        super::view::config_view(&model, &self.runtime.load(), &journal)
    }
}

impl App {
    fn journal(&self) -> Arc<crate::stats::journal::Journal> {
        self.runtime.load().journal.clone()
    }
}

fn refusal(e: ChangeError) -> AdminError {
    match e {
        ChangeError::NoPool(_) | ChangeError::NoServer { .. } => AdminError::NotFound(e.to_string()),
        ChangeError::Duplicate { .. } | ChangeError::Removing { .. } | ChangeError::Conflict(_) => {
            AdminError::Conflict(e.to_string())
        }
        ChangeError::Fleet(_) => AdminError::Failed(e.to_string()),
        ChangeError::Invalid(_) => AdminError::BadRequest(e.to_string()),
        ChangeError::App(_) => AdminError::Failed(e.to_string()),
    }
}
