//! vCenter's SOAP API (vim25 at `/sdk`) for the calls infradeck sends, shaped as VMware's vcsim
//! answers them (element names, order, `type` attributes, faults as HTTP 500): RetrieveServiceContent,
//! Login/Logout, CreateContainerView/DestroyView, RetrievePropertiesEx with `maxObjects` paging
//! (which vcsim ignores) and ContinueRetrievePropertiesEx (which vcsim does not implement), and
//! QueryNetworkHint with CDP/LLDP neighbours (vcsim sends only the device names).

use super::estate::Estate;
use super::vcenter::VcenterState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use infradeck_core::xml::{Element, parse};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// Per-simulator SOAP state: sessions, container views, result pages not yet collected.
#[derive(Default)]
pub struct SoapState {
    /// session key → calls made with it.
    sessions: HashMap<String, u64>,
    /// A session expires after this many calls (0: never), as an idle vCenter session does.
    pub expire_after_calls: u64,
    /// Logins accepted so far.
    pub logins: u64,
    views: HashMap<String, String>,
    /// token → the objects still to send, and the page size asked for.
    pages: HashMap<String, (Vec<String>, usize)>,
    next: u64,
}

impl SoapState {
    fn fresh_id(&mut self) -> String {
        self.next += 1;
        format!("{:08x}-5e55-4a11-9c0d-{:012x}", self.next, self.next * 7919)
    }
}

const ENVELOPE_HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope \
    xmlns:soapenc=\"http://schemas.xmlsoap.org/soap/encoding/\" \
    xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
    xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
    xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>";
const ENVELOPE_TAIL: &str = "</soapenv:Body></soapenv:Envelope>";

fn xml_response(status: StatusCode, body: &str, cookie: Option<String>) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        format!("{ENVELOPE_HEAD}{body}{ENVELOPE_TAIL}"),
    )
        .into_response();
    if let Some(cookie) = cookie
        && let Ok(value) = cookie.parse()
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A fault as vcsim sends it: HTTP 500, `<detail><{kind}Fault xsi:type="{kind}">`.
fn fault(kind: &str, message: &str, detail: &str) -> Response {
    xml_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!(
            "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{}</faultstring>\
             <detail><{kind}Fault xmlns=\"urn:vim25\" xsi:type=\"{kind}\">{detail}</{kind}Fault></detail></soapenv:Fault>",
            escape(message)
        ),
        None,
    )
}

fn answer(call: &str, inner: &str) -> Response {
    xml_response(
        StatusCode::OK,
        &format!("<{call}Response xmlns=\"urn:vim25\">{inner}</{call}Response>"),
        None,
    )
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .find_map(|pair| pair.strip_prefix("vmware_soap_session="))
        .map(|v| v.trim_matches('"').to_string())
}

pub(crate) async fn serve(
    State(state): State<Arc<VcenterState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(request) = parse(&body) else {
        return fault("InvalidRequest", "malformed SOAP request", "");
    };
    let Some(call) = request
        .child("Body")
        .and_then(|b| b.children.first())
        .cloned()
    else {
        return fault("InvalidRequest", "no SOAP body", "");
    };
    let name = call.name.clone();
    if name == "RetrieveServiceContent" {
        return answer(&name, &service_content());
    }
    if name == "Login" {
        return login(&state, &call);
    }
    let session = session_of(&headers);
    {
        let mut soap = state.soap.lock().unwrap_or_else(|e| e.into_inner());
        let limit = soap.expire_after_calls;
        let expired = match session.as_ref().and_then(|s| soap.sessions.get_mut(s)) {
            Some(calls) => {
                *calls += 1;
                limit > 0 && *calls > limit
            }
            None => true,
        };
        if expired {
            if let Some(s) = &session {
                soap.sessions.remove(s);
            }
            let this = call.child("_this").cloned().unwrap_or_default();
            return fault(
                "NotAuthenticated",
                "",
                &format!(
                    "<object type=\"{}\">{}</object><privilegeId>System.View</privilegeId>",
                    escape(this.attr("type").unwrap_or_default()),
                    escape(&this.text)
                ),
            );
        }
    }
    let session = session.unwrap_or_default();
    match name.as_str() {
        "Logout" => {
            let mut soap = state.soap.lock().unwrap_or_else(|e| e.into_inner());
            soap.sessions.remove(&session);
            answer(&name, "")
        }
        "CreateContainerView" => {
            let kind = call.text_of("type").unwrap_or_default().to_string();
            let mut soap = state.soap.lock().unwrap_or_else(|e| e.into_inner());
            let id = format!("session[{session}]{}", soap.fresh_id());
            soap.views.insert(id.clone(), kind);
            answer(
                &name,
                &format!(
                    "<returnval type=\"ContainerView\">{}</returnval>",
                    escape(&id)
                ),
            )
        }
        "DestroyView" => {
            let view = call.text_of("_this").unwrap_or_default();
            let mut soap = state.soap.lock().unwrap_or_else(|e| e.into_inner());
            soap.views.remove(view);
            answer(&name, "")
        }
        "RetrievePropertiesEx" => retrieve(&state, &call, &session),
        "ContinueRetrievePropertiesEx" => {
            let token = call.text_of("token").unwrap_or_default().to_string();
            let mut soap = state.soap.lock().unwrap_or_else(|e| e.into_inner());
            match soap.pages.remove(&token) {
                Some((rest, max)) => page(&mut soap, &name, rest, max),
                None => fault(
                    "InvalidArgument",
                    "unknown token",
                    "<invalidProperty>token</invalidProperty>",
                ),
            }
        }
        "QueryNetworkHint" => {
            let system = call.text_of("_this").unwrap_or_default();
            let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
            match host_of_network_system(&estate, system) {
                Some(host) => answer(&name, &network_hints(&estate, host)),
                None => fault("ManagedObjectNotFound", "no such object", ""),
            }
        }
        other => fault(
            "MethodNotFound",
            &format!("{other} is not implemented by the simulator"),
            &format!("<method>{}</method>", escape(other)),
        ),
    }
}

fn service_content() -> String {
    "<returnval><rootFolder type=\"Folder\">group-d1</rootFolder>\
     <propertyCollector type=\"PropertyCollector\">propertyCollector</propertyCollector>\
     <viewManager type=\"ViewManager\">ViewManager</viewManager>\
     <about><name>VMware vCenter Server</name><fullName>VMware vCenter Server 8.0.2 build-22617221</fullName>\
     <vendor>VMware, Inc.</vendor><version>8.0.2</version><build>22617221</build>\
     <apiType>VirtualCenter</apiType><apiVersion>8.0.2.0</apiVersion></about>\
     <sessionManager type=\"SessionManager\">SessionManager</sessionManager></returnval>"
        .to_string()
}

fn login(state: &VcenterState, call: &Element) -> Response {
    let user = call.text_of("userName").unwrap_or_default();
    let password = call.text_of("password").unwrap_or_default();
    if !state.credentials.matches(user, password) || state.faults.reject_auth() {
        return fault("InvalidLogin", "Login failure", "");
    }
    let mut soap = state.soap.lock().unwrap_or_else(|e| e.into_inner());
    let key = soap.fresh_id();
    soap.sessions.insert(key.clone(), 0);
    soap.logins += 1;
    let body = format!(
        "<LoginResponse xmlns=\"urn:vim25\"><returnval><key>{key}</key><userName>{user}</userName>\
         <fullName>{user}</fullName><loginTime>2026-11-01T08:00:00Z</loginTime>\
         <lastActiveTime>2026-11-01T08:00:00Z</lastActiveTime><locale>en_US</locale>\
         <messageLocale>en_US</messageLocale><extensionSession>false</extensionSession>\
         </returnval></LoginResponse>",
        user = escape(user)
    );
    xml_response(
        StatusCode::OK,
        &body,
        Some(format!(
            "vmware_soap_session=\"{key}\"; Path=/; HttpOnly; Secure;"
        )),
    )
}

/// One page of objects, with a token for the rest.
fn page(soap: &mut SoapState, call: &str, mut objects: Vec<String>, max: usize) -> Response {
    let rest = if objects.len() > max {
        objects.split_off(max)
    } else {
        Vec::new()
    };
    if objects.is_empty() {
        return answer(call, "");
    }
    let mut inner = String::from("<returnval>");
    if !rest.is_empty() {
        let token = soap.fresh_id();
        let _ = write!(inner, "<token>{token}</token>");
        soap.pages.insert(token, (rest, max));
    }
    for object in &objects {
        inner.push_str(object);
    }
    inner.push_str("</returnval>");
    answer(call, &inner)
}

fn retrieve(state: &VcenterState, call: &Element, session: &str) -> Response {
    let spec = call.child("specSet").cloned().unwrap_or_default();
    let kind = spec
        .path(&["propSet", "type"])
        .map(|e| e.text.clone())
        .unwrap_or_default();
    let paths: Vec<String> = spec
        .child("propSet")
        .map(|p| {
            p.children_named("pathSet")
                .map(|e| e.text.clone())
                .collect()
        })
        .unwrap_or_default();
    let view = spec
        .path(&["objectSet", "obj"])
        .map(|e| e.text.clone())
        .unwrap_or_default();
    let max = call
        .path(&["options", "maxObjects"])
        .and_then(|e| e.text.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(usize::MAX);
    let mut soap = state.soap.lock().unwrap_or_else(|e| e.into_inner());
    // A view belongs to the session that made it (vCenter forgets it with the session).
    if !soap.views.contains_key(&view) || !view.starts_with(&format!("session[{session}]")) {
        return fault(
            "ManagedObjectNotFound",
            "The object has already been deleted or has not been completely created",
            &format!("<obj type=\"ContainerView\">{}</obj>", escape(&view)),
        );
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let objects: Result<Vec<String>, String> = match kind.as_str() {
        "VirtualMachine" => estate
            .live_vms()
            .map(|vm| vm_object(&estate, vm, &paths))
            .collect(),
        "HostSystem" => (0..estate.hosts.len())
            .map(|h| host_object(&estate, h, &paths))
            .collect(),
        _ => Ok(Vec::new()),
    };
    match objects {
        Ok(objects) => page(&mut soap, "RetrievePropertiesEx", objects, max),
        Err(path) => fault(
            "InvalidProperty",
            &format!("{path} is not a property of {kind}"),
            &format!("<name>{}</name>", escape(&path)),
        ),
    }
}

fn prop(name: &str, xsi_type: &str, inner: &str) -> String {
    format!(
        "<propSet><name>{name}</name><val xmlns:XMLSchema-instance=\"http://www.w3.org/2001/XMLSchema-instance\" \
         XMLSchema-instance:type=\"{xsi_type}\">{inner}</val></propSet>"
    )
}

fn vm_object(estate: &Estate, vm: &super::estate::Vm, paths: &[String]) -> Result<String, String> {
    let mut out = format!("<objects><obj type=\"VirtualMachine\">{}</obj>", vm.moid);
    for path in paths {
        match path.as_str() {
            // Unset (no snapshots): vcsim leaves the property out.
            "snapshot" if vm.snapshots.is_empty() => {}
            "snapshot" => out.push_str(&prop(
                "snapshot",
                "VirtualMachineSnapshotInfo",
                &snapshot_info(vm),
            )),
            "layoutEx" => out.push_str(&prop(
                "layoutEx",
                "VirtualMachineFileLayoutEx",
                &layout_ex(estate, vm),
            )),
            "name" => out.push_str(&prop("name", "xsd:string", &escape(&vm.name))),
            other => return Err(other.to_string()),
        }
    }
    out.push_str("</objects>");
    Ok(out)
}

fn snapshot_info(vm: &super::estate::Vm) -> String {
    let current = vm.snapshots.last().map(|s| s.moid.as_str()).unwrap_or("");
    let mut tree = String::new();
    // A chain: each snapshot is the only child of the one before it.
    for snapshot in &vm.snapshots {
        let _ = write!(
            tree,
            "<{tag}><snapshot type=\"VirtualMachineSnapshot\">{moid}</snapshot><vm type=\"VirtualMachine\">{vm}</vm>\
             <name>{name}</name><description>{description}</description><id>{id}</id>\
             <createTime>{created}</createTime><state>{state}</state><quiesced>{quiesced}</quiesced>",
            tag = if snapshot.id == 1 {
                "rootSnapshotList"
            } else {
                "childSnapshotList"
            },
            moid = snapshot.moid,
            vm = vm.moid,
            name = escape(&snapshot.name),
            description = escape(&snapshot.description),
            id = snapshot.id,
            created = snapshot.created.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            state = if vm.power_state.as_str() == "POWERED_ON" {
                "poweredOn"
            } else {
                "poweredOff"
            },
            quiesced = snapshot.quiesced,
        );
    }
    for snapshot in vm.snapshots.iter().rev() {
        let tag = if snapshot.id == 1 {
            "rootSnapshotList"
        } else {
            "childSnapshotList"
        };
        let _ = write!(tree, "<replaySupported>false</replaySupported></{tag}>");
    }
    format!("<currentSnapshot type=\"VirtualMachineSnapshot\">{current}</currentSnapshot>{tree}")
}

/// Files and disk chains: the VM's config and disks, then per snapshot its `.vmsn` and a delta
/// disk on every disk chain.
fn layout_ex(estate: &Estate, vm: &super::estate::Vm) -> String {
    let mut files = String::new();
    let mut key = 0;
    let mut file = |name: &str, kind: &str, size: u64, files: &mut String| -> u32 {
        let _ = write!(
            files,
            "<file><key>{key}</key><name>{}</name><type>{kind}</type><size>{size}</size><accessible>true</accessible></file>",
            escape(name)
        );
        key += 1;
        key - 1
    };
    file(
        &format!("[ds] {0}/{0}.vmx", vm.hostname),
        "config",
        3_100,
        &mut files,
    );
    let mut disks = String::new();
    let mut snapshot_files = Vec::new();
    for snapshot in &vm.snapshots {
        let data = file(
            &format!(
                "[ds] {}/{}-Snapshot{}.vmsn",
                vm.hostname, vm.hostname, snapshot.id
            ),
            "snapshotData",
            42_000,
            &mut files,
        );
        snapshot_files.push(data);
    }
    for disk in &vm.disks {
        let ds = &estate.datastores[disk.datastore].name;
        let base = format!("[{ds}] {}/{}_{}", vm.hostname, vm.hostname, disk.key);
        let descriptor = file(&format!("{base}.vmdk"), "diskDescriptor", 600, &mut files);
        let extent = file(
            &format!("{base}-flat.vmdk"),
            "diskExtent",
            disk.capacity,
            &mut files,
        );
        let mut chain =
            format!("<chain><fileKey>{descriptor}</fileKey><fileKey>{extent}</fileKey></chain>");
        for snapshot in &vm.snapshots {
            let d = file(
                &format!("{base}-00000{}.vmdk", snapshot.id),
                "diskDescriptor",
                400,
                &mut files,
            );
            let e = file(
                &format!("{base}-00000{}-sesparse.vmdk", snapshot.id),
                "diskExtent",
                snapshot.delta_bytes / vm.disks.len().max(1) as u64,
                &mut files,
            );
            let _ = write!(
                chain,
                "<chain><fileKey>{d}</fileKey><fileKey>{e}</fileKey></chain>"
            );
        }
        let _ = write!(disks, "<disk><key>{}</key>{chain}</disk>", disk.key);
    }
    let mut snapshots = String::new();
    for (snapshot, data) in vm.snapshots.iter().zip(&snapshot_files) {
        let _ = write!(
            snapshots,
            "<snapshot><key type=\"VirtualMachineSnapshot\">{}</key><dataKey>{data}</dataKey><memoryKey>-1</memoryKey></snapshot>",
            snapshot.moid
        );
    }
    format!("{files}{disks}{snapshots}<timestamp>2026-11-01T08:00:00Z</timestamp>")
}

fn network_system(estate: &Estate, host: usize) -> String {
    format!(
        "hostnetworksystem-{}",
        estate.hosts[host].moid.trim_start_matches("host-")
    )
}

fn host_of_network_system(estate: &Estate, system: &str) -> Option<usize> {
    (0..estate.hosts.len()).find(|&h| network_system(estate, h) == system)
}

fn host_object(estate: &Estate, host: usize, paths: &[String]) -> Result<String, String> {
    let mut out = format!(
        "<objects><obj type=\"HostSystem\">{}</obj>",
        estate.hosts[host].moid
    );
    for path in paths {
        match path.as_str() {
            "config.network.pnic" => {
                let mut nics = String::new();
                for (k, uplink) in estate.uplinks(host).iter().enumerate() {
                    let _ = write!(
                        nics,
                        "<PhysicalNic><key>key-vim.host.PhysicalNic-{dev}</key><device>{dev}</device>\
                         <pci>0000:{bus:02x}:00.0</pci><driver>icen</driver>\
                         <linkSpeed><speedMb>{speed}</speedMb><duplex>true</duplex></linkSpeed>\
                         <wakeOnLanSupported>false</wakeOnLanSupported><mac>{mac}</mac></PhysicalNic>",
                        dev = uplink.device,
                        bus = 0x3b + k * 8,
                        speed = uplink.speed_mb,
                        mac = uplink.mac,
                    );
                }
                out.push_str(&prop("config.network.pnic", "ArrayOfPhysicalNic", &nics));
            }
            "configManager.networkSystem" => {
                let _ = write!(
                    out,
                    "<propSet><name>configManager.networkSystem</name><val xmlns:XMLSchema-instance=\"http://www.w3.org/2001/XMLSchema-instance\" \
                     XMLSchema-instance:type=\"ManagedObjectReference\" type=\"HostNetworkSystem\">{}</val></propSet>",
                    network_system(estate, host)
                );
            }
            "name" => out.push_str(&prop(
                "name",
                "xsd:string",
                &escape(&estate.hosts[host].name),
            )),
            "runtime.inMaintenanceMode" => out.push_str(&prop(
                "runtime.inMaintenanceMode",
                "xsd:boolean",
                if estate.hosts[host].maintenance {
                    "true"
                } else {
                    "false"
                },
            )),
            other => return Err(other.to_string()),
        }
    }
    out.push_str("</objects>");
    Ok(out)
}

fn network_hints(estate: &Estate, host: usize) -> String {
    let mut out = String::new();
    for uplink in estate.uplinks(host) {
        let _ = write!(out, "<returnval><device>{}</device>", uplink.device);
        match &uplink.neighbour {
            Some(("cdp", switch, port)) => {
                let _ = write!(
                    out,
                    "<connectedSwitchPort><cdpVersion>2</cdpVersion><timeout>0</timeout><ttl>180</ttl>\
                     <samples>1</samples><devId>{}</devId><address>10.0.0.1</address><portId>{}</portId>\
                     <hardwarePlatform>N9K-C93180YC-FX</hardwarePlatform></connectedSwitchPort>",
                    escape(switch),
                    escape(port)
                );
            }
            Some((_, switch, port)) => {
                let _ = write!(
                    out,
                    "<lldpInfo><chassisId>00:1c:73:aa:bb:cc</chassisId><portId>{}</portId><timeToLive>120</timeToLive>\
                     <parameter><key>System Name</key><value xsi:type=\"xsd:string\">{}</value></parameter></lldpInfo>",
                    escape(port),
                    escape(switch)
                );
            }
            None => {}
        }
        out.push_str("</returnval>");
    }
    out
}
