//! The knowledge tables: `kb_articles`, `issues`, `embeddings`.

use super::{Change, Result, Store, Writer, json_text};
use crate::model::{IssueRecord, KbArticleRecord};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

/// A `kb_articles` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KbArticleRow {
    pub id: i64,
    #[serde(flatten)]
    pub article: KbArticleRecord,
    pub(crate) cached_at: Option<String>,
}

/// An `issues` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueRow {
    pub id: i64,
    #[serde(flatten)]
    pub issue: IssueRecord,
    pub(crate) cached_at: Option<String>,
}

/// An `embeddings` row with its vector decoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbeddingRow {
    pub(crate) id: i64,
    pub(crate) content_type: String,
    pub(crate) content_id: i64,
    pub(crate) chunk_index: i64,
    pub(crate) text_content: Option<String>,
    pub vector: Vec<f32>,
    pub embedding_model: Option<String>,
}

const KB_COLUMNS: &str = "id, source_id, space_key, title, body_text, body_html, url, parent_id, \
     labels, created_at, last_updated, cached_at";

fn labels_from(text: Option<String>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn kb_from_row(row: &Row<'_>) -> rusqlite::Result<KbArticleRow> {
    Ok(KbArticleRow {
        id: row.get(0)?,
        article: KbArticleRecord {
            source_id: row.get(1)?,
            space_key: row.get(2)?,
            title: row.get(3)?,
            body_text: row.get(4)?,
            body_html: row.get(5)?,
            url: row.get(6)?,
            parent_id: row.get(7)?,
            labels: labels_from(row.get(8)?),
            created_at: row.get(9)?,
            last_updated: row.get(10)?,
        },
        cached_at: row.get(11)?,
    })
}

const ISSUE_COLUMNS: &str = "id, issue_key, project_key, issue_type, summary, description, status, \
     resolution, assignee, reporter, priority, labels, comments, created_at, updated_at, resolved_at, \
     cached_at";

fn issue_from_row(row: &Row<'_>) -> rusqlite::Result<IssueRow> {
    let comments: Option<String> = row.get(12)?;
    Ok(IssueRow {
        id: row.get(0)?,
        issue: IssueRecord {
            issue_key: row.get(1)?,
            project_key: row.get(2)?,
            issue_type: row.get(3)?,
            summary: row.get(4)?,
            description: row.get(5)?,
            status: row.get(6)?,
            resolution: row.get(7)?,
            assignee: row.get(8)?,
            reporter: row.get(9)?,
            priority: row.get(10)?,
            labels: labels_from(row.get(11)?),
            comments: comments
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null),
            created_at: row.get(13)?,
            updated_at: row.get(14)?,
            resolved_at: row.get(15)?,
        },
        cached_at: row.get(16)?,
    })
}

/// Encodes a vector as little-endian f32 bytes, the `embedding_vector` format.
pub fn encode_vector(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Decodes little-endian f32 bytes; a trailing partial value is ignored.
pub fn decode_vector(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

impl Writer<'_> {
    /// Inserts or updates a KB page keyed by its Confluence id; returns its row id.
    pub fn upsert_kb_article(
        &self,
        article: &KbArticleRecord,
        cached_at: &str,
    ) -> Result<(i64, Change<KbArticleRecord>)> {
        let conn = self.conn();
        let before = conn
            .prepare_cached(&format!(
                "SELECT {KB_COLUMNS} FROM kb_articles WHERE source_id = ?1"
            ))?
            .query_row([&article.source_id], kb_from_row)
            .optional()?;
        if let Some(row) = &before
            && row.article == *article
        {
            return Ok((row.id, Change::Unchanged));
        }
        let labels = serde_json::Value::from(article.labels.clone());
        conn.prepare_cached(
            "INSERT INTO kb_articles (source_id, space_key, title, body_text, body_html, url, \
             parent_id, labels, created_at, last_updated, cached_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             ON CONFLICT (source_id) DO UPDATE SET space_key = excluded.space_key, \
             title = excluded.title, body_text = excluded.body_text, body_html = excluded.body_html, \
             url = excluded.url, parent_id = excluded.parent_id, labels = excluded.labels, \
             created_at = excluded.created_at, last_updated = excluded.last_updated, \
             cached_at = excluded.cached_at",
        )?
        .execute(params![
            article.source_id,
            article.space_key,
            article.title,
            article.body_text,
            article.body_html,
            article.url,
            article.parent_id,
            json_text(&labels),
            article.created_at,
            article.last_updated,
            cached_at
        ])?;
        let id: i64 = conn
            .prepare_cached("SELECT id FROM kb_articles WHERE source_id = ?1")?
            .query_row([&article.source_id], |r| r.get(0))?;
        Ok((
            id,
            match before {
                None => Change::Added,
                Some(row) => Change::Updated {
                    before: row.article,
                },
            },
        ))
    }

    /// Inserts or updates a Jira issue keyed by its key; returns its row id.
    pub fn upsert_issue(
        &self,
        issue: &IssueRecord,
        cached_at: &str,
    ) -> Result<(i64, Change<IssueRecord>)> {
        let conn = self.conn();
        let before = conn
            .prepare_cached(&format!(
                "SELECT {ISSUE_COLUMNS} FROM issues WHERE issue_key = ?1"
            ))?
            .query_row([&issue.issue_key], issue_from_row)
            .optional()?;
        if let Some(row) = &before
            && row.issue == *issue
        {
            return Ok((row.id, Change::Unchanged));
        }
        let labels = serde_json::Value::from(issue.labels.clone());
        conn.prepare_cached(
            "INSERT INTO issues (issue_key, project_key, issue_type, summary, description, status, \
             resolution, assignee, reporter, priority, labels, comments, created_at, updated_at, \
             resolved_at, cached_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
             ?14, ?15, ?16) ON CONFLICT (issue_key) DO UPDATE SET project_key = excluded.project_key, \
             issue_type = excluded.issue_type, summary = excluded.summary, \
             description = excluded.description, status = excluded.status, \
             resolution = excluded.resolution, assignee = excluded.assignee, \
             reporter = excluded.reporter, priority = excluded.priority, labels = excluded.labels, \
             comments = excluded.comments, created_at = excluded.created_at, \
             updated_at = excluded.updated_at, resolved_at = excluded.resolved_at, \
             cached_at = excluded.cached_at",
        )?
        .execute(params![
            issue.issue_key,
            issue.project_key,
            issue.issue_type,
            issue.summary,
            issue.description,
            issue.status,
            issue.resolution,
            issue.assignee,
            issue.reporter,
            issue.priority,
            json_text(&labels),
            json_text(&issue.comments),
            issue.created_at,
            issue.updated_at,
            issue.resolved_at,
            cached_at
        ])?;
        let id: i64 = conn
            .prepare_cached("SELECT id FROM issues WHERE issue_key = ?1")?
            .query_row([&issue.issue_key], |r| r.get(0))?;
        Ok((
            id,
            match before {
                None => Change::Added,
                Some(row) => Change::Updated { before: row.issue },
            },
        ))
    }

    /// Removes the embeddings (of every model) of `content_type` whose content is not in
    /// `keep`: a machine that is gone, or whose primary record changed. Returns how many pieces
    /// of content lost their vectors.
    pub fn remove_embeddings_except(&self, content_type: &str, keep: &[i64]) -> Result<usize> {
        let keep: std::collections::HashSet<i64> = keep.iter().copied().collect();
        let conn = self.conn();
        let stored: Vec<i64> = conn
            .prepare_cached("SELECT DISTINCT content_id FROM embeddings WHERE content_type = ?1")?
            .query_map([content_type], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut delete = conn
            .prepare_cached("DELETE FROM embeddings WHERE content_type = ?1 AND content_id = ?2")?;
        let mut removed = 0;
        for id in stored.into_iter().filter(|id| !keep.contains(id)) {
            delete.execute(params![content_type, id])?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Replaces the embedding chunks of one piece of content for one model.
    pub fn replace_embeddings(
        &self,
        content_type: &str,
        content_id: i64,
        model: &str,
        chunks: &[(String, Vec<f32>)],
        created_at: &str,
    ) -> Result<()> {
        let conn = self.conn();
        conn.prepare_cached(
            "DELETE FROM embeddings WHERE content_type = ?1 AND content_id = ?2 AND embedding_model = ?3",
        )?
        .execute(params![content_type, content_id, model])?;
        let mut insert = conn.prepare_cached(
            "INSERT INTO embeddings (content_type, content_id, chunk_index, text_content, \
             embedding_vector, embedding_model, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (index, (text, vector)) in chunks.iter().enumerate() {
            insert.execute(params![
                content_type,
                content_id,
                index as i64,
                text,
                encode_vector(vector),
                model,
                created_at
            ])?;
        }
        Ok(())
    }
}

impl Store {
    /// One KB page by its Confluence id.
    pub fn kb_article(&self, source_id: &str) -> Result<Option<KbArticleRow>> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {KB_COLUMNS} FROM kb_articles WHERE source_id = ?1"
            ))?
            .query_row([source_id], kb_from_row)
            .optional()?)
    }

    /// One issue by key.
    pub fn issue(&self, issue_key: &str) -> Result<Option<IssueRow>> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {ISSUE_COLUMNS} FROM issues WHERE issue_key = ?1"
            ))?
            .query_row([issue_key], issue_from_row)
            .optional()?)
    }

    /// One KB page by row id.
    pub fn kb_article_by_id(&self, id: i64) -> Result<Option<KbArticleRow>> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {KB_COLUMNS} FROM kb_articles WHERE id = ?1"
            ))?
            .query_row([id], kb_from_row)
            .optional()?)
    }

    /// One issue by row id.
    pub fn issue_by_id(&self, id: i64) -> Result<Option<IssueRow>> {
        Ok(self
            .conn()
            .prepare_cached(&format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = ?1"))?
            .query_row([id], issue_from_row)
            .optional()?)
    }

    /// Which of `words` (lowercase) name a device, by name, short host name or an interface
    /// address: word → a device record it names (an active one when there is a choice).
    pub fn devices_known_as(
        &self,
        words: &[String],
    ) -> Result<std::collections::HashMap<String, i64>> {
        let mut known = std::collections::HashMap::new();
        if words.is_empty() {
            return Ok(known);
        }
        let list = serde_json::to_string(words).map_err(|source| super::Error::Json {
            column: "words",
            source,
        })?;
        // One pass over the devices and one over the interfaces, each word checked by a hash
        // lookup in SQLite's `IN` list rather than one query per word.
        let sql = "WITH words(word) AS (SELECT value FROM json_each(?1))              SELECT lower(d.name), d.id FROM devices d WHERE lower(d.name) IN words              UNION ALL              SELECT substr(lower(d.name), 1, instr(lower(d.name) || '.', '.') - 1), d.id FROM devices d              WHERE instr(d.name, '.') > 0                AND substr(lower(d.name), 1, instr(lower(d.name), '.') - 1) IN words              UNION ALL              SELECT substr(a.value, 1, instr(a.value || '/', '/') - 1), i.device_id              FROM network_interfaces i, json_each(COALESCE(i.ip_addresses, '[]')) a              WHERE substr(a.value, 1, instr(a.value || '/', '/') - 1) IN words";
        let mut stmt = self.conn().prepare_cached(sql)?;
        let rows = stmt.query_map([list], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (word, id) = row?;
            known.entry(word).or_insert(id);
        }
        Ok(known)
    }

    /// The embedding chunks of one piece of content, in chunk order.
    pub fn embeddings_of(&self, content_type: &str, content_id: i64) -> Result<Vec<EmbeddingRow>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, content_type, content_id, chunk_index, text_content, embedding_vector, \
             embedding_model FROM embeddings WHERE content_type = ?1 AND content_id = ?2 \
             ORDER BY chunk_index",
        )?;
        let rows = stmt.query_map(params![content_type, content_id], |r| {
            let bytes: Option<Vec<u8>> = r.get(5)?;
            Ok(EmbeddingRow {
                id: r.get(0)?,
                content_type: r.get(1)?,
                content_id: r.get(2)?,
                chunk_index: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                text_content: r.get(4)?,
                vector: decode_vector(&bytes.unwrap_or_default()),
                embedding_model: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
