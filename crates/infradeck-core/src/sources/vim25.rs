//! vCenter's SOAP API (vim25 at `/sdk`), for what the Automation REST API lacks: VM snapshot
//! trees with their sizes (`snapshot`, `layoutEx`) and host physical NICs with their CDP/LLDP
//! neighbours (`config.network.pnic`, `QueryNetworkHint`).
//!
//! A small typed client of our own: RetrieveServiceContent, Login/Logout, a container view over
//! the inventory, and RetrievePropertiesEx / ContinueRetrievePropertiesEx in pages. One session
//! per run (the `vmware_soap_session` cookie); a `NotAuthenticated` fault (the session expired)
//! logs in once more and replays the call. Faults and malformed XML name the call.

use crate::config::Secret;
use crate::http::{Answer, RequestParts, SourceClient, SourceError};
use crate::xml::{Element, parse};
use reqwest::Method;
use std::sync::atomic::{AtomicU32, Ordering};

/// Objects per RetrievePropertiesEx page (vCenter may send fewer; vcsim ignores it).
pub const PAGE: usize = 500;
/// Re-logins allowed in one run (a session that keeps expiring is a failure, not a loop).
const MAX_RELOGINS: u32 = 5;
/// The vim25 release we speak: 7.0 U2, the oldest vCenter the REST side accepts too.
const SOAP_ACTION: &str = "urn:vim25/7.0.2.0";

/// The managed objects every session starts from.
#[derive(Debug, Clone)]
pub(crate) struct ServiceContent {
    pub(crate) root_folder: String,
    pub(crate) property_collector: String,
    pub(crate) view_manager: String,
    pub(crate) session_manager: String,
}

/// One object and the properties asked for (absent when unset).
#[derive(Debug, Clone)]
pub struct ObjectContent {
    pub moid: String,
    pub(crate) properties: Vec<(String, Element)>,
}

impl ObjectContent {
    pub(crate) fn get(&self, path: &str) -> Option<&Element> {
        self.properties
            .iter()
            .find(|(name, _)| name == path)
            .map(|(_, value)| value)
    }
}

pub struct Soap<'a> {
    client: &'a SourceClient,
    user: String,
    password: Secret,
    content: ServiceContent,
    cookie: tokio::sync::RwLock<String>,
    relogins: AtomicU32,
}

impl std::fmt::Debug for Soap<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No password, no session cookie.
        f.debug_struct("Soap")
            .field("source", &self.client.name)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// XML text escaping for values we put into requests.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `<tag type="T">moid</tag>`: a managed object reference.
fn moref(tag: &str, kind: &str, moid: &str) -> String {
    format!("<{tag} type=\"{}\">{}</{tag}>", escape(kind), escape(moid))
}

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )
}

/// A SOAP fault: its type (`NotAuthenticated`, `InvalidLogin`, ...) and message.
struct Fault {
    kind: String,
    message: String,
}

fn fault_of(body: &Element) -> Option<Fault> {
    let fault = body.child("Fault")?;
    let message = fault.text_of("faultstring").unwrap_or_default().to_string();
    // The type is the detail's element (`<InvalidLoginFault>`) or its xsi:type.
    let kind = fault
        .child("detail")
        .and_then(|d| d.children.first())
        .map(|d| {
            d.attr("type")
                .map(|t| t.rsplit(':').next().unwrap_or(t).to_string())
                .unwrap_or_else(|| d.name.trim_end_matches("Fault").to_string())
        })
        .unwrap_or_else(|| "ServerFault".to_string());
    Some(Fault { kind, message })
}

impl<'a> Soap<'a> {
    /// RetrieveServiceContent, then Login.
    pub async fn login(
        client: &'a SourceClient,
        user: &str,
        password: &Secret,
    ) -> Result<Soap<'a>, SourceError> {
        let mut soap = Soap {
            client,
            user: user.to_string(),
            password: password.clone(),
            content: ServiceContent {
                root_folder: String::new(),
                property_collector: String::new(),
                view_manager: String::new(),
                session_manager: String::new(),
            },
            cookie: tokio::sync::RwLock::new(String::new()),
            relogins: AtomicU32::new(0),
        };
        let body = format!(
            "<RetrieveServiceContent xmlns=\"urn:vim25\">{}</RetrieveServiceContent>",
            moref("_this", "ServiceInstance", "ServiceInstance")
        );
        let answer = soap.post("RetrieveServiceContent", &body).await?;
        let content = answer
            .child("returnval")
            .ok_or_else(|| soap.malformed("RetrieveServiceContent", "no returnval"))?;
        let field = |name: &str| -> Result<String, SourceError> {
            content
                .text_of(name)
                .map(str::to_string)
                .ok_or_else(|| soap.malformed("RetrieveServiceContent", &format!("no {name}")))
        };
        soap.content = ServiceContent {
            root_folder: field("rootFolder")?,
            property_collector: field("propertyCollector")?,
            view_manager: field("viewManager")?,
            session_manager: field("sessionManager")?,
        };
        soap.create_session().await?;
        Ok(soap)
    }

    fn url(&self) -> String {
        self.client.url("/sdk")
    }

    fn malformed(&self, call: &str, detail: &str) -> SourceError {
        self.client.api_error(
            &self.url(),
            format!("SOAP {call}: unexpected answer: {detail}"),
        )
    }

    async fn create_session(&self) -> Result<(), SourceError> {
        let body = format!(
            "<Login xmlns=\"urn:vim25\">{}<userName>{}</userName><password>{}</password></Login>",
            moref("_this", "SessionManager", &self.content.session_manager),
            escape(&self.user),
            escape(self.password.expose()),
        );
        let (answer, cookie) = self.exchange("Login", &body, "").await?;
        match (answer, cookie) {
            (Ok(_), Some(cookie)) => {
                *self.cookie.write().await = cookie;
                Ok(())
            }
            (Ok(_), None) => Err(self.malformed("Login", "no vmware_soap_session cookie")),
            (Err(fault), _) if fault.kind == "InvalidLogin" => Err(SourceError::Unauthorized {
                source_name: self.client.name.clone(),
                url: self.url(),
                message: format!("SOAP Login refused: {}", fault.message),
            }),
            (Err(fault), _) => Err(self.fault_error("Login", &fault)),
        }
    }

    fn fault_error(&self, call: &str, fault: &Fault) -> SourceError {
        self.client.api_error(
            &self.url(),
            format!("SOAP {call} failed: {} ({})", fault.message, fault.kind),
        )
    }

    /// One call with the session; `NotAuthenticated` logs in again once and replays.
    async fn call(&self, call: &str, body: &str) -> Result<Element, SourceError> {
        for replay in 0..2 {
            let cookie = self.cookie.read().await.clone();
            let (answer, _) = self.exchange(call, body, &cookie).await?;
            match answer {
                Ok(element) => return Ok(element),
                Err(fault) if fault.kind == "NotAuthenticated" && replay == 0 => {
                    self.relogin(&cookie).await?;
                }
                Err(fault) => return Err(self.fault_error(call, &fault)),
            }
        }
        Err(SourceError::Unauthorized {
            source_name: self.client.name.clone(),
            url: self.url(),
            message: format!("SOAP {call}: session rejected right after logging in again"),
        })
    }

    async fn relogin(&self, stale: &str) -> Result<(), SourceError> {
        {
            let current = self.cookie.read().await;
            if *current != stale {
                return Ok(());
            }
        }
        if self.relogins.fetch_add(1, Ordering::Relaxed) >= MAX_RELOGINS {
            return Err(SourceError::Unauthorized {
                source_name: self.client.name.clone(),
                url: self.url(),
                message: format!("the SOAP session expired {MAX_RELOGINS} times in one run"),
            });
        }
        tracing::info!(source = %self.client.name, "vCenter SOAP session expired; logging in again");
        self.create_session().await
    }

    /// A call without a session (RetrieveServiceContent).
    async fn post(&self, call: &str, body: &str) -> Result<Element, SourceError> {
        match self.exchange(call, body, "").await?.0 {
            Ok(element) => Ok(element),
            Err(fault) => Err(self.fault_error(call, &fault)),
        }
    }

    /// Sends one envelope; the `<callResponse>` element or the fault, and the session cookie
    /// if the answer set one. A fault comes as HTTP 500: that is the answer, not retried.
    async fn exchange(
        &self,
        call: &str,
        body: &str,
        cookie: &str,
    ) -> Result<(Result<Element, Fault>, Option<String>), SourceError> {
        let mut headers = vec![("SOAPAction", SOAP_ACTION.to_string())];
        if !cookie.is_empty() {
            headers.push(("Cookie", cookie.to_string()));
        }
        let envelope = envelope(body);
        let answer = self
            .client
            .send(
                Method::POST,
                "/sdk",
                &RequestParts {
                    headers: &headers,
                    body: Some(("text/xml; charset=utf-8", envelope.as_bytes())),
                    answers: &[500],
                    ..Default::default()
                },
            )
            .await?;
        let cookie = session_cookie(&answer);
        let status = answer.status;
        if !status.is_success() && status.as_u16() != 500 {
            return Err(self
                .client
                .expect_success(answer)
                .err()
                .unwrap_or_else(|| self.malformed(call, &format!("HTTP {status}"))));
        }
        let root = parse(&answer.body).map_err(|e| {
            self.client.api_error(
                &answer.url,
                format!(
                    "SOAP {call}: malformed XML at byte {}: {}",
                    e.offset, e.message
                ),
            )
        })?;
        let body = root
            .child("Body")
            .ok_or_else(|| self.malformed(call, "no SOAP Body"))?;
        if let Some(fault) = fault_of(body) {
            return Ok((Err(fault), cookie));
        }
        let response = body
            .child(&format!("{call}Response"))
            .cloned()
            .ok_or_else(|| self.malformed(call, &format!("no {call}Response")))?;
        Ok((Ok(response), cookie))
    }

    /// The given properties of every object of `kind` in the inventory, in pages of [`PAGE`].
    pub async fn retrieve(
        &self,
        kind: &str,
        paths: &[&str],
    ) -> Result<Vec<ObjectContent>, SourceError> {
        let logins = self.relogins.load(Ordering::Relaxed);
        let result = self.retrieve_in_view(kind, paths).await;
        // The session expired half-way: the view (and any paging token) went with it, so the
        // listing starts over once in the new session.
        if result.is_err() && self.relogins.load(Ordering::Relaxed) != logins {
            return self.retrieve_in_view(kind, paths).await;
        }
        result
    }

    /// One listing through a container view of its own, destroyed afterwards.
    async fn retrieve_in_view(
        &self,
        kind: &str,
        paths: &[&str],
    ) -> Result<Vec<ObjectContent>, SourceError> {
        let view = self.create_view(kind).await?;
        let result = self.retrieve_from(&view, kind, paths).await;
        // A view left behind costs vCenter memory until the session ends; not worth failing for.
        let body = format!(
            "<DestroyView xmlns=\"urn:vim25\">{}</DestroyView>",
            moref("_this", "ContainerView", &view)
        );
        let _ = self.call("DestroyView", &body).await;
        result
    }

    async fn create_view(&self, kind: &str) -> Result<String, SourceError> {
        let body = format!(
            "<CreateContainerView xmlns=\"urn:vim25\">{}{}<type>{}</type><recursive>true</recursive></CreateContainerView>",
            moref("_this", "ViewManager", &self.content.view_manager),
            moref("container", "Folder", &self.content.root_folder),
            escape(kind),
        );
        let answer = self.call("CreateContainerView", &body).await?;
        answer
            .text_of("returnval")
            .map(str::to_string)
            .ok_or_else(|| self.malformed("CreateContainerView", "no returnval"))
    }

    async fn retrieve_from(
        &self,
        view: &str,
        kind: &str,
        paths: &[&str],
    ) -> Result<Vec<ObjectContent>, SourceError> {
        let path_set: String = paths
            .iter()
            .map(|p| format!("<pathSet>{}</pathSet>", escape(p)))
            .collect();
        let body = format!(
            "<RetrievePropertiesEx xmlns=\"urn:vim25\">{this}<specSet><propSet><type>{kind}</type>{path_set}</propSet>\
             <objectSet>{obj}<skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><name>view</name>\
             <type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet></specSet>\
             <options><maxObjects>{PAGE}</maxObjects></options></RetrievePropertiesEx>",
            this = moref(
                "_this",
                "PropertyCollector",
                &self.content.property_collector
            ),
            kind = escape(kind),
            obj = moref("obj", "ContainerView", view),
        );
        let mut out = Vec::new();
        let mut answer = self.call("RetrievePropertiesEx", &body).await?;
        // No returnval: no objects at all.
        while let Some(result) = answer.child("returnval") {
            for object in result.children_named("objects") {
                out.push(object_content(object));
            }
            let Some(token) = result.text_of("token") else {
                break;
            };
            let body = format!(
                "<ContinueRetrievePropertiesEx xmlns=\"urn:vim25\">{}<token>{}</token></ContinueRetrievePropertiesEx>",
                moref(
                    "_this",
                    "PropertyCollector",
                    &self.content.property_collector
                ),
                escape(token),
            );
            answer = self.call("ContinueRetrievePropertiesEx", &body).await?;
        }
        Ok(out)
    }

    /// CDP/LLDP hints of a host's physical NICs (`QueryNetworkHint` on its network system).
    pub(crate) async fn network_hints(
        &self,
        network_system: &str,
    ) -> Result<Vec<Element>, SourceError> {
        let body = format!(
            "<QueryNetworkHint xmlns=\"urn:vim25\">{}</QueryNetworkHint>",
            moref("_this", "HostNetworkSystem", network_system)
        );
        let answer = self.call("QueryNetworkHint", &body).await?;
        Ok(answer.children_named("returnval").cloned().collect())
    }

    pub async fn logout(&self) {
        let body = format!(
            "<Logout xmlns=\"urn:vim25\">{}</Logout>",
            moref("_this", "SessionManager", &self.content.session_manager)
        );
        let _ = self.call("Logout", &body).await;
    }
}

fn object_content(object: &Element) -> ObjectContent {
    ObjectContent {
        moid: object.text_of("obj").unwrap_or_default().to_string(),
        properties: object
            .children_named("propSet")
            .filter_map(|p| Some((p.text_of("name")?.to_string(), p.child("val")?.clone())))
            .collect(),
    }
}

/// `vmware_soap_session="..."` from Set-Cookie, as the Cookie header sends it back.
fn session_cookie(answer: &Answer) -> Option<String> {
    answer
        .headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.trim_start().starts_with("vmware_soap_session="))
        .map(|pair| pair.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_named_by_its_detail_type() {
        let body = crate::xml::parse(
            br#"<soapenv:Body xmlns:soapenv="x" xmlns:xsi="y"><soapenv:Fault><faultcode>ServerFaultCode</faultcode>
            <faultstring>Login failure</faultstring><detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"/></detail>
            </soapenv:Fault></soapenv:Body>"#,
        )
        .unwrap();
        let fault = fault_of(&body).unwrap();
        assert_eq!(
            (fault.kind.as_str(), fault.message.as_str()),
            ("InvalidLogin", "Login failure")
        );
        let bare = crate::xml::parse(
            b"<Body><Fault><faultstring>x</faultstring><detail><NotAuthenticatedFault/></detail></Fault></Body>",
        )
        .unwrap();
        assert_eq!(fault_of(&bare).unwrap().kind, "NotAuthenticated");
    }

    #[test]
    fn request_text_is_escaped() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(
            moref("_this", "Folder", "group-d1"),
            "<_this type=\"Folder\">group-d1</_this>"
        );
    }
}
