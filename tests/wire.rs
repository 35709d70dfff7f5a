//! The wire layer: stream framing limits and the client against an in-test fake server.

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use qmpcheck::wire::stream::parse_json;
use qmpcheck::wire::{
    Client, ClientConfig, DecodeError, Decoder, DecoderConfig, Message, Reply, Stray, Text, WireError,
};
use serde_json::{json, Value};

/// Three server messages: a string holding braces, brackets, escaped quotes and a backslash,
/// CRLF and odd whitespace between texts.
const STREAM: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n\
{\"return\": {\"s\": \"}]{[\\\"\\\\\", \"n\": [1, [2, {}]]}, \"id\": \"a\"}\r\n \t\n\
{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n";

/// Feeds `chunks` one after another and collects every text.
fn decode_chunks(chunks: &[&[u8]]) -> Vec<Text> {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk);
        while let Some(item) = decoder.next_text() {
            out.push(item.expect("valid text"));
        }
    }
    out
}

fn offsets_and_values(texts: &[Text]) -> Vec<(u64, Value)> {
    texts.iter().map(|t| (t.offset, t.value.clone())).collect()
}

#[test]
fn decoder_gives_same_texts_at_every_split_point() {
    let whole = decode_chunks(&[STREAM]);
    let offsets: Vec<u64> = whole.iter().map(|t| t.offset).collect();
    assert_eq!(offsets, vec![0, 110, 174]);
    assert_eq!(whole[1].value, json!({"return": {"s": "}]{[\"\\", "n": [1, [2, {}]]}, "id": "a"}));
    assert_eq!(whole[2].raw.last(), Some(&b'}'));
    for split in 0..=STREAM.len() {
        let (a, b) = STREAM.split_at(split);
        let parts = decode_chunks(&[a, b]);
        assert_eq!(offsets_and_values(&parts), offsets_and_values(&whole), "split at {split}");
    }
    let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
    assert_eq!(offsets_and_values(&decode_chunks(&bytes)), offsets_and_values(&whole));
}

#[test]
fn decoder_takes_many_texts_from_one_read() {
    let mut buf = Vec::new();
    let mut expected_offsets = Vec::new();
    for i in 0..100 {
        expected_offsets.push(buf.len() as u64);
        buf.extend_from_slice(format!("{{\"return\": {{}}, \"id\": {i}}}").as_bytes());
        buf.extend_from_slice(if i % 2 == 0 { b"\r\n" } else { b" " });
    }
    let texts = decode_chunks(&[&buf]);
    let ids: Vec<Value> = texts.iter().map(|t| t.value["id"].clone()).collect();
    assert_eq!(ids, (0..100).map(|i| json!(i)).collect::<Vec<_>>());
    assert_eq!(texts.iter().map(|t| t.offset).collect::<Vec<_>>(), expected_offsets);
}

#[test]
fn decoder_strips_crlf_and_keeps_raw_bytes() {
    let texts = decode_chunks(&[b"{\"return\": {}}\r\n\r\n{\"return\": 1}\r", b"\n"]);
    let raws: Vec<&[u8]> = texts.iter().map(|t| t.raw.as_slice()).collect();
    assert_eq!(raws, vec![&b"{\"return\": {}}"[..], &b"{\"return\": 1}"[..]]);
    assert_eq!(texts[1].offset, 18);
}

/// `[[...[1]...]]` nested `depth` deep.
fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

fn depth_of(mut value: &Value) -> usize {
    let mut depth = 0;
    while let Some(inner) = value.as_array().and_then(|a| a.first()) {
        depth += 1;
        value = inner;
    }
    depth
}

#[test]
fn decoder_parses_1025_deep_id() {
    let text = format!("{{\"return\": {{}}, \"id\": {}}}\r\n", nested(1025));
    let texts = decode_chunks(&[text.as_bytes()]);
    assert_eq!(texts.len(), 1);
    assert_eq!(depth_of(&texts[0].value["id"]), 1025);
}

#[test]
fn oversize_text_is_an_error_and_decoding_resumes() {
    let mut decoder = Decoder::new(DecoderConfig { max_text: 4096, max_depth: 64 });
    decoder.feed(b"{\"return\": {}} {\"return\": \"");
    let first = decoder.next_text().map(|r| r.map(|t| t.offset));
    assert_eq!(first, Some(Ok(0)));
    let mut errors = Vec::new();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..64 {
        // 4 MiB in total, never held: the buffer stays bounded by one chunk.
        decoder.feed(&chunk);
        while let Some(item) = decoder.next_text() {
            errors.push(item.map(|t| t.offset));
        }
        assert!(decoder.pending().len() <= chunk.len() + 4096, "buffer grew to {}", decoder.pending().len());
    }
    decoder.feed(b"\"} {\"return\": 2}");
    while let Some(item) = decoder.next_text() {
        errors.push(item.map(|t| t.offset));
    }
    let tail_offset = 27 + 64 * 64 * 1024 + 3;
    assert_eq!(errors, vec![Err(DecodeError::TooLarge { offset: 15, limit: 4096 }), Ok(tail_offset)]);
}

#[test]
fn too_deep_and_invalid_texts_are_errors_and_decoding_resumes() {
    let mut decoder = Decoder::new(DecoderConfig { max_text: 1 << 20, max_depth: 64 });
    let text = format!("{} {{\"a\" 1}} {{\"return\": 3}}", nested(65));
    decoder.feed(text.as_bytes());
    let deep = decoder.next_text();
    assert_eq!(deep, Some(Err(DecodeError::TooDeep { offset: 0, limit: 64 })));
    let Some(Err(DecodeError::Syntax { offset, len, tail, .. })) = decoder.next_text() else {
        panic!("expected a syntax error")
    };
    assert_eq!((offset, len, tail.as_str()), (132, 7, "{\"a\" 1}"));
    let last = decoder.next_text().map(|r| r.map(|t| t.value));
    assert_eq!(last, Some(Ok(json!({"return": 3}))));
    assert!(decoder.next_text().is_none());
}

/// Every item the decoder gives for `input` fed in one piece, then byte by byte: values
/// as JSON text, errors as `TooManyTokens@offset` or `Syntax:<text>`. Both ways must agree.
fn token_limited(limit: usize, input: &[u8]) -> Vec<String> {
    let show = |item: Result<Text, DecodeError>| match item {
        Ok(text) => text.value.to_string(),
        Err(DecodeError::TooManyTokens { offset, limit: l }) => {
            assert_eq!(l, limit);
            format!("TooManyTokens@{offset}")
        }
        Err(DecodeError::Syntax { tail, .. }) => format!("Syntax:{tail}"),
        Err(other) => format!("{other:?}"),
    };
    let mut whole = Decoder::default().with_max_tokens(limit);
    assert_eq!(whole.max_tokens(), Some(limit));
    whole.feed(input);
    let mut items: Vec<String> = std::iter::from_fn(|| whole.next_text()).map(show).collect();
    items.extend(whole.finish().map(show));
    let mut split = Decoder::default().with_max_tokens(limit);
    let mut bytewise = Vec::new();
    for byte in input {
        split.feed(std::slice::from_ref(byte));
        bytewise.extend(std::iter::from_fn(|| split.next_text()).map(show));
    }
    bytewise.extend(split.finish().map(show));
    assert_eq!(items, bytewise, "fed whole vs byte by byte: {}", String::from_utf8_lossy(input));
    items
}

#[test]
fn token_limit_drops_the_text_and_the_crossing_token_then_reads_the_rest() {
    // 7 tokens: [ 1 , "a b" , true ]. Within a limit of 7 it is one text.
    assert_eq!(token_limited(7, br#"[1, "a b", true]"#), vec![r#"[1,"a b",true]"#]);
    // Limit 5: `true` is the 6th token; it goes with the text, and `]` is read alone.
    assert_eq!(token_limited(5, br#"[1, "a b", true] 7"#), vec!["TooManyTokens@0", "Syntax:]", "7"]);
    // Limit 3: the crossing token is a string holding delimiters; it is skipped whole.
    assert_eq!(
        token_limited(3, br#" [12,"x,]y\"",2] "#),
        vec!["TooManyTokens@1", "Syntax:,", "2", "Syntax:]"]
    );
    // Limit 3: a bare run crosses ({ "k" : fit, `nul` is the 4th) and is skipped whole.
    assert_eq!(token_limited(3, br#"{"k":nul} {}"#), vec!["TooManyTokens@0", "Syntax:}", "{}"]);
    // Limit 2: the crossing token is `:`; the bare run after it is read as a text.
    assert_eq!(token_limited(2, br#"{"k":nul} {}"#), vec!["TooManyTokens@0", "Syntax:nul", "Syntax:}", "{}"]);
    // Whitespace and string contents are no tokens: 3 tokens fit a limit of 3.
    assert_eq!(token_limited(3, b"[ \"{[,: ]\" \t\r\n]"), vec![r#"["{[,: ]"]"#]);
}

#[test]
fn decoder_counts_no_tokens_by_default() {
    let mut decoder = Decoder::default();
    assert_eq!(decoder.max_tokens(), None);
    let text = format!("[{}1]", "1,".repeat(100_000));
    decoder.feed(text.as_bytes());
    let items: Vec<_> = std::iter::from_fn(|| decoder.next_text()).collect();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().map(|t| t.value.as_array().map(Vec::len)), Ok(Some(100_001)));
}

// ---- client against a fake server ----

const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}\r\n";

/// The server end of a fake QMP connection.
struct Peer {
    stream: UnixStream,
    decoder: Decoder,
}

impl Peer {
    /// Reads the next command the client sent.
    fn read_command(&mut self) -> Value {
        use std::io::Read;
        loop {
            if let Some(item) = self.decoder.next_text() {
                return item.expect("client sent valid json").value;
            }
            let mut buf = [0u8; 4096];
            let n = self.stream.read(&mut buf).expect("read command");
            assert!(n > 0, "client closed early");
            self.decoder.feed(&buf[..n]);
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }
}

/// Starts a one-connection fake server running `script` after sending the greeting.
fn fake_server(
    script: impl FnOnce(&mut Peer) + Send + 'static,
) -> (tempfile::TempDir, PathBuf, JoinHandle<()>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("qmp.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut peer = Peer { stream, decoder: Decoder::default() };
        peer.send(GREETING);
        script(&mut peer);
    });
    (dir, path, handle)
}

fn quick_config() -> ClientConfig {
    ClientConfig { read_timeout: Duration::from_millis(300), ..ClientConfig::default() }
}

#[test]
fn events_and_strays_before_the_reply_are_queued() {
    let (_dir, path, server) = fake_server(|peer| {
        let command = peer.read_command();
        assert_eq!(command["execute"], "stop");
        let id = command["id"].to_string();
        let batch = format!(
            "{{\"event\": \"STOP\", \"timestamp\": {{\"seconds\": 5, \"microseconds\": 6}}}}\r\n\
             {{\"return\": {{}}, \"id\": \"other\"}}\r\n\
             {{\"error\": {{\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}}}\r\n\
             {{\"weird\": 1}}\r\n{{\"return\": {{\"done\": true}}, \"id\": {id}}}\r\n"
        );
        let (a, b) = batch.as_bytes().split_at(40);
        peer.send(a);
        peer.send(b);
        peer.read_command();
    });
    let mut client = Client::connect(&path, quick_config()).expect("connect");
    assert_eq!(client.greeting().map(|g| g.version.qemu.to_string()), Some("7.2.22".to_string()));
    let reply = client.execute("stop", None).expect("reply");
    assert_eq!(reply, Reply::Return { value: json!({"done": true}), id: Some(json!("qmpcheck-1")) });
    let events = client.take_events();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].event.as_str(), events[0].timestamp.seconds), ("STOP", 5));
    let strays: Vec<&'static str> = client
        .take_strays()
        .iter()
        .map(|s| match s {
            Stray::Message(m) => m.message.kind(),
            Stray::Decode(_) => "decode",
        })
        .collect();
    assert_eq!(strays, vec!["return", "error", "unknown"]);
    client.send_raw(b"{}").expect("send");
    server.join().expect("server");
}

#[test]
fn timeout_names_the_command_and_the_bytes_so_far() {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (_dir, path, server) = fake_server(move |peer| {
        peer.read_command();
        peer.send(b"{\"return\": {\"sta");
        let _ = done_rx.recv_timeout(Duration::from_secs(10));
    });
    let mut client = Client::connect(&path, quick_config()).expect("connect");
    let started = std::time::Instant::now();
    let err = client.execute("query-status", None).expect_err("must time out");
    assert!(started.elapsed() < Duration::from_secs(2));
    let WireError::Timeout { in_flight, received, .. } = &err else { panic!("not a timeout: {err}") };
    assert_eq!((in_flight.name.as_str(), in_flight.id.as_deref()), ("query-status", Some("\"qmpcheck-1\"")));
    assert_eq!((received.bytes, received.tail.as_str()), (16, "{\"return\": {\"sta"));
    let text = err.to_string();
    assert!(text.contains("query-status (id \"qmpcheck-1\")") && text.contains("after 16 bytes"), "{text}");
    done_tx.send(()).expect("wake server");
    server.join().expect("server");
}

#[test]
fn eof_mid_reply_names_the_command_and_the_bytes_so_far() {
    let (_dir, path, server) = fake_server(|peer| {
        peer.read_command();
        peer.send(b"{\"return\": {\"status\": \"prelaunch\",\r\n");
    });
    let mut client = Client::connect(&path, quick_config()).expect("connect");
    let err = client.execute("query-status", None).expect_err("must fail");
    let WireError::Closed { in_flight, received } = &err else { panic!("not closed: {err}") };
    assert_eq!(in_flight.name, "query-status");
    assert_eq!(
        (received.bytes, received.tail.as_str()),
        (36, "{\"return\": {\"status\": \"prelaunch\",\\r\\n")
    );
    server.join().expect("server");
}

#[test]
fn ids_are_matched_structurally_even_1024_deep() {
    let (_dir, path, server) = fake_server(|peer| {
        for _ in 0..2 {
            let command = peer.read_command();
            let id = match &command["id"] {
                // Echo an object id with its members reordered.
                Value::Object(map) => {
                    let mut text = String::from("{");
                    let members: Vec<String> =
                        map.iter().rev().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                    text.push_str(&members.join(", "));
                    text.push('}');
                    text
                }
                other => other.to_string(),
            };
            peer.send(format!("{{\"return\": {{}}, \"id\": {id}}}\r\n").as_bytes());
        }
    });
    let mut client = Client::connect(&path, quick_config()).expect("connect");
    let deep = parse_json(nested(1024).as_bytes()).expect("deep id");
    let reply = client.execute_with_id("x", None, deep.clone()).expect("deep reply");
    assert_eq!(reply.id().map(depth_of), Some(1024));
    let object_id = json!({"a": 1, "b": [2, {"c": null}]});
    let reply = client.execute_with_id("y", Some(json!({})), object_id.clone()).expect("object reply");
    assert_eq!(reply.id(), Some(&object_id));
    assert_eq!(client.take_strays(), Vec::new());
    server.join().expect("server");
}

#[test]
fn read_message_returns_any_text_with_its_offset() {
    let (_dir, path, server) = fake_server(|peer| {
        peer.send(b"[1, 2]\r\n{\"bad\"\r\n}");
    });
    let mut client = Client::connect(&path, quick_config()).expect("connect");
    let msg = client.read_message().expect("message");
    assert_eq!((msg.offset, msg.message), (GREETING.len() as u64, Message::Unknown(json!([1, 2]))));
    let err = client.read_message().expect_err("invalid json");
    let is_syntax = |e: &WireError| match e {
        WireError::Decode { source, .. } => matches!(**source, DecodeError::Syntax { len: 9, .. }),
        _ => false,
    };
    assert!(is_syntax(&err), "{err}");
    server.join().expect("server");
    let err = client.read_message().expect_err("closed");
    assert!(matches!(err, WireError::Closed { .. }), "{err}");
}
