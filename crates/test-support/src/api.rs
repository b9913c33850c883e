//! A blocking JSON client for the control API (`/v1`), plain HTTP on loopback: every call is
//! one connection, the key is sent as `Authorization: Bearer`.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One API answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub json: serde_json::Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The `field` of each error.
    pub fn error_fields(&self) -> Vec<String> {
        self.json["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A client for one API address and key.
#[derive(Debug, Clone)]
pub struct Api {
    pub addr: SocketAddr,
    pub key: Option<String>,
}

impl Api {
    pub fn new(addr: SocketAddr, key: &str) -> Self {
        Self {
            addr,
            key: Some(key.to_string()),
        }
    }

    pub fn with_key(&self, key: &str) -> Self {
        Self::new(self.addr, key)
    }

    /// Sends one request; `extra` are header lines (each ending in CRLF).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        extra: &str,
    ) -> Answer {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let auth = self
            .key
            .as_ref()
            .map(|k| format!("Authorization: Bearer {k}\r\n"))
            .unwrap_or_default();
        let raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: api\r\n{auth}{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut s = TcpStream::connect(self.addr).expect("connect to the API");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        s.write_all(raw.as_bytes()).expect("write");
        let mut r = BufReader::new(s);
        let resp = crate::client::read_response(&mut r, method == "HEAD").expect("an answer");
        let text = String::from_utf8_lossy(&resp.body).into_owned();
        Answer {
            status: resp.status,
            headers: resp.headers,
            json: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
            text,
        }
    }

    pub fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None, "")
    }
    pub fn post(&self, path: &str, body: serde_json::Value) -> Answer {
        self.call("POST", path, Some(&body), "")
    }
    pub fn put(&self, path: &str, body: serde_json::Value) -> Answer {
        self.call("PUT", path, Some(&body), "")
    }
    pub fn patch(&self, path: &str, body: serde_json::Value) -> Answer {
        self.call("PATCH", path, Some(&body), "")
    }
    pub fn delete(&self, path: &str) -> Answer {
        self.call("DELETE", path, None, "")
    }
}
