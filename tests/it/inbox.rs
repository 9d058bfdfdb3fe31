//! Customer mail in, end to end: a real Dovecot (Debian's `dovecot-imapd`)
//! with a throwaway config and Maildir in a temp dir, mails delivered into
//! it as real MIME files (as a delivery agent does), the real SMTP server of
//! the support tests receiving the bot's answers, and the bot as the real
//! binary. Flags are read from the Maildir's file names (`:2,S` is `\Seen`,
//! a lower-case letter a keyword: the bot's `$OpsbotDone` is the first).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{shipped_config, Env, LiveBot};
use crate::support::{free_port, Smtp};

/// The IMAP password the bot is given.
const PASSWORD: &str = "inbox-pw";

/// A throwaway Dovecot serving one user, `support`, over plain IMAP on a
/// loopback port.
pub struct Dovecot {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
    /// A TLS server's certificates, read again by its processes.
    certs: Option<tempfile::TempDir>,
}

/// Starts the server on its config and waits until it listens.
fn spawn_dovecot(d: &Path, port: u16) -> Child {
    let child = Command::new("/usr/sbin/dovecot")
        .args(["-F", "-c"])
        .arg(d.join("dovecot.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dovecot");
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "dovecot did not listen on {port}: {}",
            std::fs::read_to_string(d.join("dovecot.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// nobody:nogroup, who Dovecot's workers run as.
const NOBODY: u32 = 65534;

impl Dovecot {
    pub fn start() -> Dovecot {
        Dovecot::start_with("")
    }

    /// A server without IDLE: the bot has to look every `poll`.
    pub fn start_without_idle() -> Dovecot {
        Dovecot::start_with(
            "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+\n",
        )
    }

    fn start_with(extra: &str) -> Dovecot {
        Dovecot::start_on(free_port(), extra)
    }

    /// A server with TLS: STARTTLS on `port`, implicit TLS on the returned
    /// port, its certificate (for 127.0.0.1) from a CA of its own, whose
    /// certificate is at [`Dovecot::ca`].
    pub fn start_tls() -> (Dovecot, u16) {
        let imaps = free_port();
        let certs = tempfile::tempdir().unwrap();
        let c = certs.path();
        std::fs::write(c.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        let openssl = |args: &[&str]| {
            let ok = Command::new("openssl")
                .args(args)
                .current_dir(c)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl");
            assert!(ok.success(), "openssl {args:?} failed");
        };
        // A CA of the company's own, and the server's certificate from it.
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Example Test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ]);
        let extra = format!(
            "ssl = yes\nssl_cert = <{c}/cert.pem\nssl_key = <{c}/key.pem\nservice imap-login {{\n  inet_listener imaps {{\n    port = {imaps}\n    ssl = yes\n  }}\n}}\n",
            c = certs.path().display()
        );
        let mut d = Dovecot::start_with(&extra);
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", imaps)).is_err() {
            assert!(Instant::now() < deadline, "no imaps on {imaps}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let ca = d.dir.path().join("ca.pem");
        std::fs::copy(c.join("ca.pem"), &ca).unwrap();
        d.certs = Some(certs);
        (d, imaps)
    }

    /// The CA certificate a TLS server's certificate comes from.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server on `port` (one the bot may already be trying).
    fn start_on(port: u16, extra: &str) -> Dovecot {
        let bin = Path::new("/usr/sbin/dovecot");
        assert!(
            bin.exists(),
            "no /usr/sbin/dovecot: run .ci/setup to install dovecot-imapd"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["run", "state"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let maildir = d.join("mail").join("support");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        let chmod = |p: &Path, mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        chmod(d, 0o777);
        for sub in ["run", "state", "mail"] {
            chmod(&d.join(sub), 0o777);
        }
        for p in [
            maildir.clone(),
            maildir.join("new"),
            maildir.join("cur"),
            maildir.join("tmp"),
        ] {
            std::os::unix::fs::chown(&p, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        std::fs::write(d.join("users"), format!("support:{{PLAIN}}{PASSWORD}\n")).unwrap();
        let conf = format!(
            r#"protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
mail_location = maildir:{d}/mail/%u
default_internal_user = nobody
default_login_user = nobody
default_internal_group = nogroup
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
}}
{extra}"#,
            d = d.display()
        );
        // A TLS server says `ssl = yes` in `extra` instead.
        let conf = if extra.contains("ssl = yes") {
            conf.replace("ssl = no\n", "")
        } else {
            conf
        };
        std::fs::write(d.join("dovecot.conf"), conf).unwrap();
        let child = spawn_dovecot(d, port);
        Dovecot {
            child,
            dir,
            port,
            certs: None,
        }
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail").join("support")
    }

    /// Delivers a mail as a delivery agent does: written in `tmp/`, then
    /// moved into `new/` under `name`.
    pub fn deliver(&self, name: &str, raw: &str) {
        let raw = raw.replace("\r\n", "\n").replace('\n', "\r\n");
        let tmp = self.maildir().join("tmp").join(name);
        std::fs::write(&tmp, raw).unwrap();
        std::os::unix::fs::chown(&tmp, Some(NOBODY), Some(NOBODY)).unwrap();
        std::fs::rename(&tmp, self.maildir().join("new").join(name)).unwrap();
    }

    /// The flags of mail `name` (the letters after `:2,`; empty while it is
    /// new), or None when it is not there.
    pub fn flags(&self, name: &str) -> Option<String> {
        if self.maildir().join("new").join(name).exists() {
            return Some(String::new());
        }
        let prefix = format!("{name}:2,");
        std::fs::read_dir(self.maildir().join("cur"))
            .ok()?
            .flatten()
            .find_map(|e| {
                let f = e.file_name().to_string_lossy().to_string();
                f.strip_prefix(&prefix).map(str::to_string)
            })
    }

    /// Waits until mail `name` carries the bot's keyword; returns its flags.
    pub fn wait_done(&self, name: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(f) = self.flags(name) {
                if f.contains('a') {
                    return f;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{name} was never marked handled (flags {:?})",
                self.flags(name)
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Takes every flag off mail `name`, as if the bot had died between
    /// its commit and the flag.
    pub fn unflag(&self, name: &str) {
        let flags = self.flags(name).expect("the mail is there");
        let cur = self.maildir().join("cur");
        std::fs::rename(
            cur.join(format!("{name}:2,{flags}")),
            cur.join(format!("{name}:2,")),
        )
        .unwrap();
    }
}

impl Dovecot {
    /// Stops the server as its service would (SIGTERM): the master ends
    /// its IMAP processes too, so every connection drops. (SIGKILL would
    /// leave them serving their clients.)
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The shipped config, mail sent to `smtp`, the inbox on `imap`, and
/// `extra` lines added to `[support.inbox]`.
fn inbox_env(smtp: u16, imap: u16, extra: &str) -> Env {
    Env::shipped_with(&inbox_config(smtp, imap, extra)).with_inbox_password()
}

fn inbox_config(smtp: u16, imap: u16, extra: &str) -> String {
    let mut text = shipped_config().replace("port = 2525", &format!("port = {smtp}"));
    text.push_str(&format!(
        "\n[support.inbox]\nhost = \"127.0.0.1\"\nport = {imap}\ntls = \"none\"\nuser = \"support\"\npassword_env = \"TEST_INBOX_PASSWORD\"\npoll = \"500ms\"\n{extra}\n"
    ));
    text
}

impl Env {
    fn with_inbox_password(mut self) -> Env {
        self.vars
            .push(("TEST_INBOX_PASSWORD".into(), PASSWORD.into()));
        self
    }
}

/// The ticket as the API shows it, once `pred` holds (bounded).
fn wait_ticket(bot: &LiveBot, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, text) = bot.get(&format!("/api/v1/tickets/{id}"));
        if code == 200 {
            let v: Value = serde_json::from_str(&text).unwrap();
            if pred(&v) {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "{id} never got there: {text}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn exists(bot: &LiveBot, id: &str) -> bool {
    bot.get(&format!("/api/v1/tickets/{id}")).0 == 200
}

/// The texts of a ticket's timeline entries of `kind`.
fn entries(t: &Value, kind: &str) -> Vec<String> {
    t["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect()
}

fn mails_from_customer(t: &Value) -> Vec<String> {
    entries(t, "commented")
        .into_iter()
        .filter(|e| e.starts_with("mail from "))
        .collect()
}

/// A first mail from Carol: multipart (text and HTML, quoted-printable),
/// with a PDF attached, an encoded-word subject.
const FIRST: &str = "Return-Path: <carol@customer.example>
Delivered-To: support@example.com
From: Carol =?UTF-8?Q?K=C3=B6nig?= <Carol@Customer.example>
To: Example Support <support@example.com>
Subject: =?UTF-8?B?S2Fzc2UgZGVmZWt0IOKAkyBiaXR0ZSBoZWxmZW4=?=
Message-ID: <first.1@customer.example>
Date: Wed, 02 Dec 2026 03:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"outer\"

--outer
Content-Type: multipart/alternative; boundary=\"inner\"

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

The checkout says =E2=80=9Cpayment failed=E2=80=9D for order 1234, every ti=
me I pay.

--inner
Content-Type: text/html; charset=utf-8

<p>The checkout says <b>payment failed</b> for order 1234.</p>
--inner--

--outer
Content-Type: application/pdf; name=\"receipt.pdf\"
Content-Disposition: attachment; filename=\"receipt.pdf\"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoKdHJhaWxlcgo8
PC9Sb290IDEgMCBSPj4KJSVFT0YK
--outer--
";

fn header<'a>(m: &'a std::collections::HashMap<String, String>, k: &str) -> &'a str {
    m.get(k).map(String::as_str).unwrap_or("")
}

#[test]
fn a_mail_opens_a_ticket_answered_in_its_thread_and_replies_land_on_it() {
    let imap = Dovecot::start();
    let smtp = Smtp::start(free_port());
    let env = inbox_env(smtp.port, imap.port, "reopen_within = \"1h\"");
    let mut bot = env.live(&[]);
    imap.deliver("first", FIRST);

    let t = wait_ticket(&bot, "OPS-1", |t| t["customer"].is_object());
    assert_eq!(t["title"], "Kasse defekt – bitte helfen");
    assert_eq!(t["source"], "support");
    assert_eq!(t["state"], "open");
    assert_eq!(t["customer"]["email"], "carol@customer.example", "{t}");
    assert_eq!(
        t["description"],
        "The checkout says “payment failed” for order 1234, every time I pay."
    );
    let notes = entries(&t, "commented");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("Attached to the mail (not kept): receipt.pdf (application/pdf, "),
        "{notes:?}"
    );
    let flags = imap.wait_done("first");
    assert!(flags.contains('S'), "taken in: seen ({flags})");

    // The acknowledgement answers Carol's mail and roots the ticket's thread.
    let mails = smtp.wait_for(1);
    let (ack, ack_body) = &mails[0];
    assert_eq!(header(ack, "x-rcptto"), "carol@customer.example");
    assert!(
        header(ack, "subject").starts_with("[OPS-1] We received your request: "),
        "{ack:?}"
    );
    assert_eq!(header(ack, "message-id"), "<opsbot.OPS-1@example.com>");
    assert_eq!(header(ack, "in-reply-to"), "<first.1@customer.example>");
    assert_eq!(header(ack, "references"), "<first.1@customer.example>");
    assert!(
        header(ack, "reply-to").contains("<support+OPS-1@example.com>"),
        "{ack:?}"
    );
    assert!(ack_body.contains("OPS-1"), "{ack_body}");

    // A reply to the acknowledgement: HTML only, base64.
    imap.deliver(
        "reply-html",
        "From: carol@customer.example
To: Example Support <support+OPS-1@example.com>
Subject: Re: [OPS-1] We received your request
Message-ID: <reply.2@customer.example>
In-Reply-To: <opsbot.OPS-1@example.com>
References: <first.1@customer.example> <opsbot.OPS-1@example.com>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PGh0bWw+PGJvZHk+PHA+SXQgaGFwcGVuZWQgYWdhaW4gYXQgPGI+MTA6MDI8L2I+LjwvcD48L2JvZHk+PC9odG1sPg==
",
    );
    // One matched by its tag alone, in ISO-8859-1, quoted-printable.
    imap.deliver(
        "reply-tag",
        "From: Carol <carol@customer.example>
To: support+OPS-1@example.com
Subject: =?ISO-8859-1?Q?Noch_eine_Frage?=
Message-ID: <reply.3@customer.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe, und die Bestellung ist noch offen.
",
    );
    let t = wait_ticket(&bot, "OPS-1", |t| mails_from_customer(t).len() == 2);
    assert_eq!(
        mails_from_customer(&t),
        [
            "mail from carol@customer.example: It happened again at 10:02.",
            "mail from carol@customer.example: Grüße, und die Bestellung ist noch offen.",
        ]
    );
    imap.wait_done("reply-html");
    imap.wait_done("reply-tag");
    assert!(!exists(&bot, "OPS-2"), "a reply is never a new ticket");

    // Closed: the closing mail replies in the same thread.
    for line in [
        ":as olivia",
        "/ticket resolve id:OPS-1 note:\"The payment provider's outage is over.\"",
        "/ticket verify id:OPS-1",
    ] {
        bot.line(line);
    }
    let mails = smtp.wait_for(2);
    let (closed, _) = &mails[1];
    assert_eq!(header(closed, "in-reply-to"), "<opsbot.OPS-1@example.com>");
    assert_eq!(
        header(closed, "references"),
        "<first.1@customer.example> <opsbot.OPS-1@example.com>"
    );
    assert!(
        header(closed, "message-id").starts_with("<opsbot.OPS-1."),
        "{closed:?}"
    );

    // Carol writes again soon after: the ticket is reopened, not a new one.
    imap.deliver(
        "after-close",
        "From: carol@customer.example
To: support@example.com
Subject: Re: [OPS-1] Solved
Message-ID: <reply.4@customer.example>
In-Reply-To: <opsbot.OPS-1.2@example.com>
Content-Type: text/plain

Sorry, it is broken again.
",
    );
    let t = wait_ticket(&bot, "OPS-1", |t| mails_from_customer(t).len() == 3);
    assert_ne!(t["state"], "closed", "{t}");
    assert_eq!(
        entries(&t, "reopened"),
        ["the customer wrote again by mail"]
    );
    assert!(!exists(&bot, "OPS-2"));

    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.in_channel("ops")[0],
        "New support mail OPS-1 · p3 · Kasse defekt – bitte helfen — opened by support (support)"
    );
    let thread = run.in_thread("ops", "OPS-1").join("\n");
    assert!(
        thread.contains(
            "The customer wrote by mail (carol@customer.example): It happened again at 10:02."
        ),
        "{thread}"
    );
    assert!(
        thread.contains("customer reopened it: the customer wrote again by mail"),
        "{thread}"
    );
    // Two mails in all: the acknowledgement and the closing; replies get no answer.
    assert_eq!(smtp.mails().len(), 2);
}

/// A plain mail from `from` with `headers` added.
fn mail(from: &str, id: &str, subject: &str, headers: &str, body: &str) -> String {
    format!(
        "From: {from}\nTo: support@example.com\nSubject: {subject}\nMessage-ID: <{id}>\n{headers}MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n{body}\n"
    )
}

#[test]
fn auto_replies_bounces_lists_and_the_bots_own_mail_open_nothing_and_get_no_answer() {
    let imap = Dovecot::start();
    let smtp = Smtp::start(free_port());
    let env = inbox_env(smtp.port, imap.port, "");
    let bot = env.live(&[]);
    imap.deliver(
        "first",
        &mail(
            "dave@customer.example",
            "d1@customer.example",
            "Login broken",
            "",
            "I cannot log in.",
        ),
    );
    wait_ticket(&bot, "OPS-1", |_| true);
    smtp.wait_for(1);
    let automatic = [
        // An out-of-office answer to the acknowledgement: a loop, if answered.
        (
            "ooo",
            mail(
                "dave@customer.example",
                "ooo@customer.example",
                "Out of office: [OPS-1] We received your request",
                "Auto-Submitted: auto-replied\nIn-Reply-To: <opsbot.OPS-1@example.com>\n",
                "I am away until Monday.",
            ),
        ),
        (
            "bulk",
            mail(
                "news@shop.example",
                "n1@shop.example",
                "Our offers",
                "Precedence: bulk\n",
                "Buy now",
            ),
        ),
        (
            "list",
            mail(
                "list@lists.example",
                "l1@lists.example",
                "[list] hello",
                "Precedence: list\nList-Id: <x.lists.example>\n",
                "hi all",
            ),
        ),
        (
            "suppress",
            mail(
                "exchange@corp.example",
                "s1@corp.example",
                "Automatic reply",
                "X-Auto-Response-Suppress: All\n",
                "Auto",
            ),
        ),
        (
            "own",
            mail(
                "Example Support <support@example.com>",
                "own@example.com",
                "[OPS-1] We received your request",
                "",
                "our own",
            ),
        ),
        (
            "bounce",
            "Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>
To: support@example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce.1@mx.customer.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"

--b
Content-Type: text/plain

The mail to nobody@customer.example could not be delivered.
--b
Content-Type: message/delivery-status

Final-Recipient: rfc822; nobody@customer.example
Action: failed
Status: 5.1.1
--b--
"
            .to_string(),
        ),
        (
            "postmaster",
            mail(
                "postmaster@customer.example",
                "p1@customer.example",
                "Delivery delayed",
                "",
                "still trying",
            ),
        ),
    ];
    for (name, raw) in &automatic {
        imap.deliver(name, raw);
    }
    // A customer's mail after them: once it is in, the others were looked at.
    imap.deliver(
        "last",
        &mail(
            "erin@customer.example",
            "e1@customer.example",
            "Invoice missing",
            "",
            "Where is my invoice?",
        ),
    );
    wait_ticket(&bot, "OPS-2", |_| true);
    for (name, _) in &automatic {
        let flags = imap.wait_done(name);
        assert!(
            !flags.contains('S'),
            "{name} is left unread for a person: {flags}"
        );
    }
    assert!(imap.wait_done("last").contains('S'));
    assert!(!exists(&bot, "OPS-3"), "automatic mail opened a ticket");
    let t = wait_ticket(&bot, "OPS-1", |_| true);
    assert!(mails_from_customer(&t).is_empty(), "{t}");
    let mails = smtp.wait_for(2);
    std::thread::sleep(Duration::from_millis(500));
    let to: Vec<String> = smtp
        .mails()
        .iter()
        .map(|(h, _)| header(h, "x-rcptto").to_string())
        .collect();
    assert_eq!(
        to,
        ["dave@customer.example", "erin@customer.example"],
        "{mails:?}"
    );
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

#[test]
fn huge_mails_many_recipients_hostile_text_and_a_busy_sender_are_bounded() {
    let imap = Dovecot::start();
    let smtp = Smtp::start(free_port());
    let env = inbox_env(
        smtp.port,
        imap.port,
        "max_mail_bytes = 200000\nper_sender_per_hour = 2",
    );
    let bot = env.live(&[]);
    // Larger than max_mail_bytes: read for its headers only.
    let huge = format!("{}\n", "x".repeat(76)).repeat(4000);
    imap.deliver(
        "huge",
        &mail(
            "fay@customer.example",
            "huge@customer.example",
            "Log file",
            "",
            &huge,
        ),
    );
    let t = wait_ticket(&bot, "OPS-1", |_| true);
    let d = t["description"].as_str().unwrap();
    assert!(
        d.starts_with("(the mail has 30") && d.contains("only its headers were read"),
        "{d}"
    );
    // Under it but longer than a ticket keeps: cut, and said so.
    let long = "word ".repeat(6000);
    imap.deliver(
        "long",
        &mail(
            "gus@customer.example",
            "long@customer.example",
            "Long story",
            "",
            &long,
        ),
    );
    let t = wait_ticket(&bot, "OPS-2", |_| true);
    let d = t["description"].as_str().unwrap();
    assert!(d.chars().count() < 10_200, "{}", d.len());
    assert!(
        d.ends_with("(cut after 10000 characters; the whole mail stays in the mailbox)"),
        "{d}"
    );

    // A thousand recipients: one ticket, and only the sender is answered.
    let to: Vec<String> = (0..1000)
        .map(|i| format!("user{i}@customer.example"))
        .collect();
    imap.deliver(
        "crowd",
        &format!(
            "From: hal@customer.example\nTo: support@example.com, {}\nCc: {}\nSubject: To everyone\nMessage-ID: <crowd@customer.example>\nContent-Type: text/plain\n\nHello all\n",
            to[..500].join(", "),
            to[500..].join(", ")
        ),
    );
    // Hostile text: pings, a terminal escape, a bidi override, markup.
    imap.deliver(
        "hostile",
        &mail(
            "ivy@customer.example",
            "hostile@customer.example",
            "@everyone \u{202e}gnp.exe <@123456789> **bold**",
            "",
            "\u{1b}[31mred\u{1b}[0m @here ```\nend",
        ),
    );
    let t = wait_ticket(&bot, "OPS-4", |_| true);
    let title = t["title"].as_str().unwrap();
    let d = t["description"].as_str().unwrap();
    for s in [title, d] {
        assert!(!s.contains('\u{1b}') && !s.contains('\u{202e}'), "{s:?}");
    }

    // A busy sender: two an hour are taken in, the third waits in the mailbox.
    for i in 0..3 {
        imap.deliver(
            &format!("busy{i}"),
            &mail(
                "jo@customer.example",
                &format!("busy{i}@customer.example"),
                &format!("Question {i}"),
                "",
                "?",
            ),
        );
    }
    wait_ticket(&bot, "OPS-6", |_| true);
    assert!(imap.wait_done("busy0").contains('S'));
    assert!(imap.wait_done("busy1").contains('S'));
    assert!(!imap.wait_done("busy2").contains('S'));
    assert!(!exists(&bot, "OPS-7"));

    let mails = smtp.wait_for(6);
    let crowd: Vec<_> = mails
        .iter()
        .filter(|(h, _)| header(h, "subject").contains("OPS-3"))
        .collect();
    assert_eq!(crowd.len(), 1);
    assert_eq!(header(&crowd[0].0, "x-rcptto"), "hal@customer.example");
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // Nothing in chat pings anyone or carries the escape.
    for line in run.stdout.lines() {
        assert!(
            !line.contains('\u{1b}') && !line.contains('\u{202e}'),
            "{line:?}"
        );
    }
}

#[test]
fn a_restart_between_the_commit_and_the_flag_takes_nothing_in_twice() {
    let imap = Dovecot::start();
    let smtp = Smtp::start(free_port());
    let env = inbox_env(smtp.port, imap.port, "");
    let bot = env.live(&[]);
    imap.deliver(
        "one",
        &mail(
            "kim@customer.example",
            "one@customer.example",
            "Cannot export",
            "",
            "CSV export fails.",
        ),
    );
    imap.wait_done("one");
    smtp.wait_for(1);
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    // What a crash after the commit, before the flag, leaves: the ticket
    // stored, the mail unmarked.
    imap.unflag("one");
    assert_eq!(imap.flags("one").as_deref(), Some(""));
    let bot = env.live(&[]);
    imap.deliver(
        "two",
        &mail(
            "lou@customer.example",
            "two@customer.example",
            "Slow search",
            "",
            "Search takes a minute.",
        ),
    );
    wait_ticket(&bot, "OPS-2", |_| true);
    assert!(imap.wait_done("one").contains('S'));
    imap.wait_done("two");
    assert!(!exists(&bot, "OPS-3"), "the mail was taken in twice");
    let t = wait_ticket(&bot, "OPS-1", |_| true);
    assert_eq!(entries(&t, "opened").len(), 1);

    // Killed at any moment after a mail arrives: after the restart it is
    // in once, answered once.
    imap.deliver(
        "three",
        &mail(
            "max@customer.example",
            "three@customer.example",
            "Wrong total",
            "",
            "The total is wrong.",
        ),
    );
    std::thread::sleep(Duration::from_millis(300));
    bot.kill9();
    let mut bot = env.live(&[]);
    imap.wait_done("three");
    wait_ticket(&bot, "OPS-3", |_| true);
    smtp.wait_for(3);
    bot.line("/ticket list");
    std::thread::sleep(Duration::from_millis(1000));
    assert!(!exists(&bot, "OPS-4"));
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let to: Vec<String> = smtp
        .mails()
        .iter()
        .map(|(h, _)| header(h, "x-rcptto").to_string())
        .collect();
    assert_eq!(
        to,
        [
            "kim@customer.example",
            "lou@customer.example",
            "max@customer.example"
        ]
    );
}

#[test]
fn inbox_settings_are_checked_with_their_place() {
    let text = format!(
        "{}\n[support.inbox]\nhost = \"imap.example.com\"\ntls = \"none\"\nuser = \"support\"\npoll = \"forever\"\nca_file = \"missing.pem\"\n",
        shipped_config()
    );
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("support.inbox.tls"), "{all}");
    assert!(all.contains("only for a server on this machine"), "{all}");
    assert!(all.contains("support.inbox.poll"), "{all}");
    assert!(all.contains("support.inbox.ca_file"), "{all}");

    let text = format!(
        "{}\n[support.inbox]\nhost = \"imap.example.com\"\nuser = \"support\"\n",
        shipped_config()
    );
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("OPSBOT_INBOX_PASSWORD is not set"), "{all}");
    assert!(
        all.contains("support inbox: INBOX on imap.example.com:993 (tls implicit)"),
        "{all}"
    );
}

#[test]
fn on_postgres_and_a_server_without_idle_mail_is_threaded_and_taken_in_once() {
    let imap = Dovecot::start_without_idle();
    let smtp = Smtp::start(free_port());
    let env = Env::on_postgres_with(&inbox_config(smtp.port, imap.port, "")).with_inbox_password();
    let bot = env.live(&[]);
    imap.deliver(
        "one",
        &mail(
            "nia@customer.example",
            "n1@customer.example",
            "Refund",
            "",
            "Please refund order 77.",
        ),
    );
    let t = wait_ticket(&bot, "OPS-1", |_| true);
    assert_eq!(t["customer"]["email"], "nia@customer.example");
    assert!(imap.wait_done("one").contains('S'));
    let mails = smtp.wait_for(1);
    assert_eq!(header(&mails[0].0, "in-reply-to"), "<n1@customer.example>");
    assert_eq!(
        header(&mails[0].0, "message-id"),
        "<opsbot.OPS-1@example.com>"
    );
    imap.deliver(
        "two",
        &mail(
            "nia@customer.example",
            "n2@customer.example",
            "Re: [OPS-1] We received your request: Refund",
            "References: <n1@customer.example> <opsbot.OPS-1@example.com>\n",
            "Any news?",
        ),
    );
    wait_ticket(&bot, "OPS-1", |t| mails_from_customer(t).len() == 1);
    imap.wait_done("two");
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    imap.unflag("one");
    imap.unflag("two");
    let bot = env.live(&[]);
    imap.wait_done("one");
    imap.wait_done("two");
    let t = wait_ticket(&bot, "OPS-1", |_| true);
    assert_eq!(mails_from_customer(&t).len(), 1, "{t}");
    assert!(!exists(&bot, "OPS-2"));
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(smtp.mails().len(), 1);
}

#[test]
fn a_mail_server_that_is_not_there_yet_is_read_once_it_is() {
    let smtp = Smtp::start(free_port());
    let port = free_port();
    let env = inbox_env(smtp.port, port, "");
    let bot = env.live(&[]);
    // Nothing listens yet: the bot says so once and keeps trying.
    std::thread::sleep(Duration::from_millis(1500));
    let imap = Dovecot::start_on(port, "");
    imap.deliver(
        "late",
        &mail(
            "olga@customer.example",
            "o1@customer.example",
            "Late",
            "",
            "one",
        ),
    );
    imap.wait_done("late");
    let t = wait_ticket(&bot, "OPS-1", |_| true);
    assert_eq!(t["title"], "Late");
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let said = run.stderr.matches("cannot read the support inbox").count();
    assert_eq!(said, 1, "said once: {}", run.stderr);
}

/// The shipped config with an inbox over TLS.
fn tls_env(smtp: u16, port: u16, tls: &str, ca: Option<&Path>) -> Env {
    let mut text = shipped_config().replace("port = 2525", &format!("port = {smtp}"));
    text.push_str(&format!(
        "\n[support.inbox]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"{tls}\"\nuser = \"support\"\npassword_env = \"TEST_INBOX_PASSWORD\"\npoll = \"500ms\"\n"
    ));
    if let Some(ca) = ca {
        text.push_str(&format!("ca_file = \"{}\"\n", ca.display()));
    }
    Env::shipped_with(&text).with_inbox_password()
}

#[test]
fn implicit_tls_and_starttls_check_the_servers_certificate() {
    let (imap, imaps) = Dovecot::start_tls();
    let smtp = Smtp::start(free_port());
    // Not trusted: the bot says why, and reads nothing.
    let env = tls_env(smtp.port, imaps, "implicit", None);
    let bot = env.live(&[]);
    imap.deliver(
        "one",
        &mail(
            "pia@customer.example",
            "p1@customer.example",
            "Over TLS",
            "",
            "secret",
        ),
    );
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(imap.flags("one").as_deref(), Some(""), "read without trust");
    let run = bot.finish();
    assert!(
        run.stderr.contains("TLS with 127.0.0.1:")
            && run.stderr.contains("invalid peer certificate"),
        "{}",
        run.stderr
    );

    // Trusted through ca_file: implicit TLS, then STARTTLS.
    let env = tls_env(smtp.port, imaps, "implicit", Some(&imap.ca()));
    let bot = env.live(&[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !imap.flags("one").is_some_and(|f| f.contains('a')) {
        if Instant::now() > deadline {
            panic!(
                "not read over TLS: {}\n{}",
                bot.finish().stderr,
                std::fs::read_to_string(imap.dir.path().join("dovecot.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(wait_ticket(&bot, "OPS-1", |_| true)["title"], "Over TLS");
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let env = tls_env(smtp.port, imap.port, "starttls", Some(&imap.ca()));
    let bot = env.live(&[]);
    imap.deliver(
        "two",
        &mail(
            "pia@customer.example",
            "p2@customer.example",
            "Over STARTTLS",
            "",
            "more",
        ),
    );
    imap.wait_done("two");
    assert_eq!(
        wait_ticket(&bot, "OPS-1", |_| true)["title"],
        "Over STARTTLS"
    );
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}
