//! `[[origin]]`: the built-in web servers, each on its own address,
//! serving a folder or the demo site.

use super::cx::Addresses;
use super::{Cx, R};
use crate::config::{model, schema};

impl Cx<'_> {
    pub(super) fn origins(&self, os: &[schema::Origin], addresses: &mut Addresses) -> R<Vec<model::Origin>> {
        let mut origins = Vec::new();
        for (i, o) in os.iter().enumerate() {
            let key = format!("origin[{i}]");
            let addr = self.socket_addr(&o.address, &format!("{key}.address"))?;
            addresses.claim(
                self,
                addr,
                &o.address,
                &format!("{key}.address"),
                format!("origin `{}`", o.name.get_ref()),
            )?;
            let content = match (&o.root, o.demo) {
                (Some(r), false) => {
                    let dir = self.path(r.get_ref());
                    if !self.env.is_dir(&dir) {
                        return Err(self.at(
                            r,
                            &format!("{key}.root"),
                            format!("`{}` is not a directory", dir.display()),
                        ));
                    }
                    model::OriginContent::Dir(dir)
                }
                (None, true) => model::OriginContent::Demo,
                (Some(r), true) => {
                    return Err(self.at(
                        r,
                        &format!("{key}.root"),
                        "set either `root` or `demo = true`, not both",
                    ))
                }
                (None, false) => {
                    return Err(self.at(&o.name, &key, "an origin needs `root = \"DIR\"` or `demo = true`"))
                }
            };
            let tls = match &o.tls {
                None => None,
                Some(t) => Some(self.origin_tls(t, &format!("{key}.tls"))?),
            };
            origins.push(model::Origin {
                name: o.name.get_ref().clone(),
                addr,
                content,
                tls,
            });
        }
        Ok(origins)
    }
}
