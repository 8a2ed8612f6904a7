//! A real HTTP/1.1 server on 127.0.0.1 that answers from a script, for the backends to talk to.
//!
//! Each connection carries one request (the server answers with `connection: close`), which is
//! read whole (request line, headers, `content-length` body) and recorded with its arrival time.
//! Replies are taken from the script in order of arrival: a JSON body, an SSE stream written
//! chunk by chunk with a delay between pieces (and optionally left hanging), or nothing at all.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stagegate_engine::backend::{AgentRequest, CallIdentity, CallMaterials, Phase};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A scripted answer to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole body with this status, content type and extra headers.
    Body {
        status: u16,
        content_type: &'static str,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// `200 text/event-stream`, chunked, one piece per chunk with `delay` before each; then,
    /// when `stall` is set, the connection stays open and silent.
    Stream {
        pieces: Vec<String>,
        delay: Duration,
        stall: bool,
    },
    /// Reads the request and never answers.
    Hang,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Body {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_owned(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Reply {
        if let Reply::Body { headers, .. } = &mut self {
            headers.push((name, value.to_owned()));
        }
        self
    }

    pub fn stream(pieces: &[&str]) -> Reply {
        Reply::Stream {
            pieces: pieces.iter().map(|piece| (*piece).to_owned()).collect(),
            delay: Duration::from_millis(20),
            stall: false,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The running server.
pub struct Server {
    pub base_url: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    /// Listens on a free port of 127.0.0.1 and answers with `script`, then with 500s.
    pub async fn start(script: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let recorded_by_server = recorded.clone();
        tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                let script = script.clone();
                let recorded = recorded_by_server.clone();
                tokio::spawn(async move { serve(connection, script, recorded).await });
            }
        });
        Server {
            base_url: format!("http://{address}"),
            recorded,
        }
    }

    /// The requests so far, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().expect("recorded").clone()
    }
}

async fn serve(
    connection: TcpStream,
    script: Arc<Mutex<VecDeque<Reply>>>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
) {
    let mut reader = BufReader::new(connection);
    let Some(request) = read_request(&mut reader).await else {
        return;
    };
    // Take the reply and record the request in one step, so that order of arrival and order of
    // replies agree.
    let reply = {
        let mut recorded = recorded.lock().expect("recorded");
        recorded.push(request);
        script.lock().expect("script").pop_front()
    }
    .unwrap_or_else(|| Reply::json(500, r#"{"error":{"message":"no scripted reply left"}}"#));
    let mut connection = reader.into_inner();
    // Write errors mean the client went away, which some tests cause on purpose.
    let _ = write_reply(&mut connection, reply).await;
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Recorded> {
    let mut line = String::new();
    reader.read_line(&mut line).await.ok()?;
    let at = Instant::now();
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(Recorded {
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        at,
    })
}

async fn write_reply(connection: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Body {
            status,
            content_type,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} Scripted\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            connection.write_all(head.as_bytes()).await?;
            connection.write_all(body.as_bytes()).await?;
            connection.flush().await
        }
        Reply::Stream {
            pieces,
            delay,
            stall,
        } => {
            connection
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
                )
                .await?;
            connection.flush().await?;
            for piece in pieces {
                tokio::time::sleep(delay).await;
                let chunk = format!("{:x}\r\n{piece}\r\n", piece.len());
                connection.write_all(chunk.as_bytes()).await?;
                connection.flush().await?;
            }
            if stall {
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
            connection.write_all(b"0\r\n\r\n").await?;
            connection.flush().await
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(600)).await;
            Ok(())
        }
    }
}

/// A call for the agent `architect` in stage `plan`, due within `timeout`.
pub fn request(prompt: &str, timeout: Duration) -> AgentRequest {
    AgentRequest {
        identity: CallIdentity {
            run_id: "run-1".to_owned(),
            stage: "plan".to_owned(),
            phase: Phase::Agent,
            agent: "architect".to_owned(),
            attempt: 1,
            artifact: None,
        },
        prompt: prompt.into(),
        repo_root: PathBuf::from("/repo"),
        feature_dir: PathBuf::from("/repo/specs/001-demo"),
        deadline: Instant::now() + timeout,
        cancel: CancellationToken::new(),
        memory_limit_bytes: 0,
        output_cap_bytes: 1 << 20,
        kill_grace: Duration::from_secs(5),
        materials: Arc::new(CallMaterials {
            stage_name: "Stage A: Planning/Spec".to_owned(),
            role: "Solution Architect".to_owned(),
            ..CallMaterials::default()
        }),
    }
}

/// Ten seconds: long enough that only the failure under test ends a call.
pub const TIMEOUT: Duration = Duration::from_secs(10);
