//! A real HTTP/1.1 server on 127.0.0.1 for the `openai` and `anthropic` backends to talk to,
//! written on `std::net` with a thread per connection (the ideas of the HTTP crate's own test
//! server, which the CLI tests cannot import).
//!
//! Each connection carries one request (every answer says `connection: close`), read whole
//! (request line, headers, a `content-length` body) and recorded with when it arrived and when
//! its answer was written. The answer comes from a handler that sees the request and how many
//! came before it, so a test can answer by prompt (QA or not) and by order (the first one 429).
//! The server stops when it is dropped. Nothing here reaches past the loopback interface.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// An answer to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole body with this status, content type and extra headers.
    Body {
        status: u16,
        content_type: &'static str,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// `200 text/event-stream`, chunked, one chunk per piece (each a whole SSE event).
    Stream { pieces: Vec<String> },
}

impl Reply {
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::Body {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Reply {
        if let Reply::Body { headers, .. } = &mut self {
            headers.push((name, value.to_owned()));
        }
        self
    }

    /// An SSE stream of `data:` lines, one event per piece.
    pub fn data_events<S: AsRef<str>>(data: &[S]) -> Reply {
        Reply::Stream {
            pieces: data
                .iter()
                .map(|data| format!("data: {}\n\n", data.as_ref()))
                .collect(),
        }
    }

    /// An SSE stream of named events: `(event, data)`.
    pub fn named_events(events: &[(&str, Value)]) -> Reply {
        Reply::Stream {
            pieces: events
                .iter()
                .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
                .collect(),
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
    /// The body as sent.
    pub raw_body: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// When its request line arrived.
    pub at: Instant,
    /// When its answer was written (`None` while it is being answered).
    pub replied_at: Option<Instant>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// The prompt: the text of the first user message (`messages`, or the Responses API's
    /// `input`).
    pub fn prompt(&self) -> &str {
        self.body["messages"][0]["content"]
            .as_str()
            .or(self.body["input"][0]["content"].as_str())
            .unwrap_or_default()
    }
}

type Handler = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

/// The running server; stops when dropped.
pub struct LoopbackServer {
    pub port: u16,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Listens on a free port of 127.0.0.1 and answers every request with
    /// `handler(request, number of requests before it)`.
    pub fn start(handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("the server's address").port();
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let acceptor = {
            let recorded = recorded.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for connection in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(connection) = connection else {
                        continue;
                    };
                    let recorded = recorded.clone();
                    let handler = handler.clone();
                    std::thread::spawn(move || serve(connection, &*handler, &recorded));
                }
            })
        };
        LoopbackServer {
            port,
            recorded,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests so far, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().expect("recorded").clone()
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// A port of 127.0.0.1 with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("an address").port()
}

fn serve(connection: TcpStream, handler: &Handler, recorded: &Mutex<Vec<Recorded>>) {
    let _ = connection.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(connection);
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    // Number and record the request in one step, so that numbers follow arrival.
    let (index, request) = {
        let mut recorded = recorded.lock().expect("recorded");
        recorded.push(request.clone());
        (recorded.len() - 1, request)
    };
    let reply = handler(&request, index);
    let mut connection = reader.into_inner();
    // Write errors mean the client went away; nothing to do about them here.
    let _ = write_reply(&mut connection, reply, || {
        recorded.lock().expect("recorded")[index].replied_at = Some(Instant::now());
    });
    let _ = connection.shutdown(Shutdown::Both);
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Recorded> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let at = Instant::now();
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
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
    reader.read_exact(&mut body).ok()?;
    let raw_body = String::from_utf8_lossy(&body).into_owned();
    Some(Recorded {
        method,
        path,
        headers,
        body: serde_json::from_str(&raw_body).unwrap_or(Value::Null),
        raw_body,
        at,
        replied_at: None,
    })
}

fn write_reply(
    connection: &mut TcpStream,
    reply: Reply,
    replied: impl FnOnce(),
) -> std::io::Result<()> {
    match reply {
        Reply::Body {
            status,
            content_type,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
                reason(status),
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            // Recorded before the bytes leave, so that a retry can never seem to come first.
            replied();
            connection.write_all(head.as_bytes())?;
            connection.write_all(body.as_bytes())?;
            connection.flush()
        }
        Reply::Stream { pieces } => {
            replied();
            connection.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            )?;
            for piece in pieces {
                let chunk = format!("{:x}\r\n{piece}\r\n", piece.len());
                connection.write_all(chunk.as_bytes())?;
                connection.flush()?;
            }
            connection.write_all(b"0\r\n\r\n")?;
            connection.flush()
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Scripted",
    }
}
