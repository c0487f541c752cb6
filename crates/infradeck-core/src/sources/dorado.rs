//! Huawei OceanStor Dorado (DeviceManager REST): one session per run (`deviceid`, `iBaseToken`
//! and its cookie), logged out at the end; `error.code` checked on every body because failures
//! arrive as HTTP 200; one re-login on `-401`; LUNs paged with `range`; capacities in 512-byte
//! sectors converted to bytes; running and health status decoded; the array as a `storage`
//! device with its pools in metadata.

use super::{DeviceBundle, FetchContext, FetchSummary, Item};
use crate::config::Secret;
use crate::http::{RequestParts, SourceError};
use crate::model::{DeviceRecord, DeviceType, SourceKind, VolumeRecord};
use reqwest::Method;
use serde_json::{Value, json};

const PAGE: usize = 100;
const SECTOR: i64 = 512;

struct Session {
    device_id: String,
    token: String,
    cookie: String,
}

struct Dorado<'a> {
    ctx: &'a FetchContext,
    base: String,
    user: String,
    password: Secret,
    session: tokio::sync::Mutex<Session>,
}

fn code_of(body: &Value) -> i64 {
    let code = &body["error"]["code"];
    code.as_i64()
        .or_else(|| code.as_str().and_then(|s| s.parse().ok()))
        .or_else(|| code.as_u64().map(|c| c as i64))
        .unwrap_or(0)
}

/// Dorado's `error.code` for a LUN id it does not have.
const LUN_DOES_NOT_EXIST: i64 = 1_077_936_859;

/// Codes after which Huawei's own driver logs in again.
fn is_session_error(code: i64) -> bool {
    matches!(code, -401 | -403 | 4_294_967_297)
}

pub(crate) fn running_status(code: &str) -> &'static str {
    match code {
        "27" => "online",
        "28" => "offline",
        "53" => "initializing",
        "1" => "normal",
        _ => "unknown",
    }
}

pub(crate) fn health_status(code: &str) -> &'static str {
    match code {
        "1" => "normal",
        "2" => "faulty",
        "3" => "degraded",
        _ => "unknown",
    }
}

impl<'a> Dorado<'a> {
    async fn login(ctx: &'a FetchContext) -> Result<Dorado<'a>, SourceError> {
        let (user, password) = ctx.required_password()?;
        let url = ctx.source.url.trim_end_matches('/');
        let base = if url.ends_with("/deviceManager/rest") {
            url.to_string()
        } else {
            format!("{url}/deviceManager/rest")
        };
        let mut dorado = Dorado {
            ctx,
            base,
            user,
            password,
            session: tokio::sync::Mutex::new(Session {
                device_id: String::new(),
                token: String::new(),
                cookie: String::new(),
            }),
        };
        let session = dorado.open_session().await?;
        dorado.session = tokio::sync::Mutex::new(session);
        Ok(dorado)
    }

    async fn open_session(&self) -> Result<Session, SourceError> {
        let client = &self.ctx.client;
        let mut body = json!({"username": self.user, "password": self.password.expose(), "scope": self.ctx.source.scope.clone().unwrap_or_else(|| "0".into())});
        if let Some(vstore) = &self.ctx.source.vstore {
            body["vstorename"] = json!(vstore);
        }
        let url = format!("{}/xx/sessions", self.base);
        let answer = client
            .send(
                Method::POST,
                &url,
                &RequestParts {
                    json: Some(&body),
                    ..Default::default()
                },
            )
            .await?;
        let cookie = answer
            .headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .collect::<Vec<_>>()
            .join("; ");
        let answer = client.expect_success(answer)?;
        let reply: Value = client.decode(&answer)?;
        let code = code_of(&reply);
        if code != 0 {
            return Err(SourceError::Unauthorized {
                source_name: client.name.clone(),
                url,
                message: format!(
                    "error {code}: {}",
                    reply["error"]["description"].as_str().unwrap_or("")
                ),
            });
        }
        if matches!(reply["data"]["accountstate"].as_i64(), Some(3 | 4)) {
            return Err(SourceError::Unauthorized { source_name: client.name.clone(), url, message: "the account's password has expired or is the initial one; change it on the array first".into() });
        }
        Ok(Session {
            device_id: reply["data"]["deviceid"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            token: reply["data"]["iBaseToken"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            cookie,
        })
    }

    /// GET a path under `{base}/{deviceid}/`, with one re-login on a session error; any other
    /// non-zero `error.code` is an error naming the code and its description.
    async fn get(&self, path: &str) -> Result<Value, SourceError> {
        self.get_unless(path, None).await?.ok_or_else(|| {
            self.ctx
                .client
                .api_error(path, "the array answered that the object does not exist")
        })
    }

    /// Like [`Self::get`], but `None` when the array answers with `absent` (its code for "no
    /// such object").
    async fn get_unless(
        &self,
        path: &str,
        absent: Option<i64>,
    ) -> Result<Option<Value>, SourceError> {
        let client = &self.ctx.client;
        for attempt in 0..2 {
            let (url, headers) = {
                let s = self.session.lock().await;
                (
                    format!("{}/{}/{path}", self.base, s.device_id),
                    [
                        ("iBaseToken", s.token.clone()),
                        ("Cookie", s.cookie.clone()),
                    ],
                )
            };
            let answer = client
                .send(
                    Method::GET,
                    &url,
                    &RequestParts {
                        headers: &headers,
                        ..Default::default()
                    },
                )
                .await?;
            let answer = client.expect_success(answer)?;
            let body: Value = client.decode(&answer)?;
            let code = code_of(&body);
            if code == 0 {
                return Ok(Some(body));
            }
            if Some(code) == absent {
                return Ok(None);
            }
            if is_session_error(code) && attempt == 0 {
                tracing::info!(source = %client.name, code, "Dorado session rejected; logging in again");
                let fresh = self.open_session().await?;
                *self.session.lock().await = fresh;
                continue;
            }
            return Err(client.api_error(
                &url,
                format!(
                    "error.code {code}: {}",
                    body["error"]["description"]
                        .as_str()
                        .unwrap_or("no description")
                ),
            ));
        }
        Err(client.api_error(path, "session rejected right after logging in again"))
    }

    async fn logout(&self) {
        let s = self.session.lock().await;
        let url = format!("{}/{}/sessions", self.base, s.device_id);
        let headers = [
            ("iBaseToken", s.token.clone()),
            ("Cookie", s.cookie.clone()),
        ];
        let _ = self
            .ctx
            .client
            .send(
                Method::DELETE,
                &url,
                &RequestParts {
                    headers: &headers,
                    ..Default::default()
                },
            )
            .await;
    }
}

fn string(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

fn sectors(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|s| s.parse::<i64>().ok())
        .or_else(|| v.as_i64())
        .map(|s| s * SECTOR)
}

pub(crate) async fn fetch(ctx: &FetchContext) -> Result<FetchSummary, SourceError> {
    ctx.progress.set_phase("connect");
    let dorado = Dorado::login(ctx).await?;
    let result = fetch_with(ctx, &dorado).await;
    dorado.logout().await;
    result
}

async fn fetch_with(ctx: &FetchContext, dorado: &Dorado<'_>) -> Result<FetchSummary, SourceError> {
    let system = dorado.get("system/").await?;
    let sys = &system["data"];
    let serial = string(&sys["ID"]);
    let name = sys["NAME"].as_str().unwrap_or(&serial).to_string();
    ctx.progress.set_phase("list pools");
    let pools = dorado.get(&format!("storagepool?range=[0-{PAGE}]")).await?;
    let pools: Vec<Value> = pools["data"].as_array().cloned().unwrap_or_default();
    let raid_of = |pool: &str| -> Option<String> {
        pools
            .iter()
            .find(|p| p["NAME"].as_str() == Some(pool))
            .and_then(|p| p["TIER0RAIDLV"].as_str())
            .map(|r| format!("RAID {r}"))
    };
    let pool_json: Vec<Value> = pools
        .iter()
        .map(|p| json!({"name": p["NAME"], "capacity_bytes": sectors(&p["USERTOTALCAPACITY"]), "free_bytes": sectors(&p["USERFREECAPACITY"]), "health": health_status(p["HEALTHSTATUS"].as_str().unwrap_or(""))}))
        .collect();
    ctx.emit(Item::Device(Box::new(DeviceBundle::new(DeviceRecord {
        source_system: SourceKind::Dorado.as_str().into(),
        source_identifier: ctx.source.id.clone(),
        source_id: serial.clone(),
        name: name.clone(),
        device_type: DeviceType::Storage,
        metadata: json!({"dorado": {"serial": serial, "model": sys["pointRelease"], "version": sys["PRODUCTVERSION"], "location": sys["LOCATION"], "health": health_status(sys["HEALTHSTATUS"].as_str().unwrap_or("")), "pools": pool_json}}),
    }))))
    .await?;
    ctx.progress.set_phase("list luns");
    let lun_record = |lun: &Value| {
        let pool = lun["PARENTNAME"].as_str().unwrap_or_default().to_string();
        VolumeRecord {
            source_system: SourceKind::Dorado.as_str().into(),
            source_identifier: ctx.source.id.clone(),
            source_id: string(&lun["ID"]),
            name: lun["NAME"].as_str().unwrap_or_default().to_string(),
            volume_type: Some("lun".into()),
            capacity_bytes: sectors(&lun["CAPACITY"]),
            used_bytes: sectors(&lun["ALLOCCAPACITY"]),
            storage_array: Some(name.clone()),
            raid_level: raid_of(&pool),
            thin_provisioned: lun["ALLOCTYPE"].as_str().map(|t| t == "1"),
            metadata: json!({"dorado": {
                "wwn": lun["WWN"].as_str().map(str::to_ascii_lowercase),
                "pool": pool,
                "running_status": running_status(lun["RUNNINGSTATUS"].as_str().unwrap_or("")),
                "health_status": health_status(lun["HEALTHSTATUS"].as_str().unwrap_or("")),
            }}),
            device_id: None,
        }
    };
    let page_size = ctx.source.page_size.unwrap_or(PAGE);
    let mut listed = std::collections::HashSet::new();
    let mut start = 0;
    loop {
        ctx.check_cancelled()?;
        let page = dorado
            .get(&format!("lun?range=[{start}-{}]", start + page_size))
            .await?;
        // An empty answer may leave `data` out entirely.
        let luns = page["data"].as_array().cloned().unwrap_or_default();
        for lun in &luns {
            let record = lun_record(lun);
            if listed.insert(record.source_id.clone()) {
                ctx.emit(Item::Volume(Box::new(record), Some(serial.clone())))
                    .await?;
                ctx.progress.inc();
            }
        }
        if luns.len() < page_size {
            break;
        }
        start += page_size;
    }
    // `range` is an offset: a LUN deleted on an earlier page while the run reads shifts the
    // rest, and the LUN at the page boundary goes unlisted. Each stored LUN the listing missed is
    // read by id; only the array's "LUN does not exist" lets the sweep remove it.
    let missed = super::missed_by_listing(&ctx.hints.volume_ids, &listed);
    let mut still_there = 0;
    for id in missed {
        ctx.check_cancelled()?;
        let path = format!(
            "lun/{}",
            form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        );
        if let Some(answer) = dorado.get_unless(&path, Some(LUN_DOES_NOT_EXIST)).await? {
            still_there += 1;
            ctx.emit(Item::Volume(
                Box::new(lun_record(&answer["data"])),
                Some(serial.clone()),
            ))
            .await?;
        }
    }
    Ok(FetchSummary {
        complete: true,
        note: (still_there > 0).then(|| {
            format!(
                "{still_there} LUN(s) were missing from the paged listing (LUNs changed while it was read) and were read by id"
            )
        }),
    })
}
