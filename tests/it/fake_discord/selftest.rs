//! The fake driven by the real serenity client, built as the bot builds it.

use std::future::Future;

use serenity::all::{
    ChannelId, ChannelType, Client, ClientBuilder, CommandDataOptionValue, CommandOptionType,
    Context, CreateActionRow, CreateAllowedMentions, CreateAttachment, CreateAutocompleteResponse,
    CreateButton, CreateCommand, CreateCommandOption, CreateInputText, CreateInteractionResponse,
    CreateInteractionResponseFollowup, CreateInteractionResponseMessage, CreateMessage,
    CreateModal, CreateThread, EditInteractionResponse, EditMessage, EventHandler, GatewayIntents,
    GuildId, HttpError, InputTextStyle, Interaction, MessageId, Nonce, ShardManager,
};
use serenity::http::{Http, HttpBuilder};
use serenity::model::gateway::Ready;

use std::sync::Mutex;

use super::*;

const T: Duration = Duration::from_secs(10);

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the test took over 60 s")
}

/// A small bot: registers its commands in the guild on READY and answers
/// interactions; errors from serenity are kept for the test to look at.
#[derive(Clone, Default)]
struct Ops {
    errors: Arc<Mutex<Vec<String>>>,
}

impl Ops {
    fn errors(&self) -> Vec<String> {
        lock(&self.errors).clone()
    }
}

fn commands() -> Vec<CreateCommand> {
    vec![
        CreateCommand::new("ping").description("Is the bot up?"),
        CreateCommand::new("ticket")
            .description("Tickets")
            .add_option(
                CreateCommandOption::new(CommandOptionType::SubCommand, "open", "Open one")
                    .add_sub_option(
                        CreateCommandOption::new(
                            CommandOptionType::String,
                            "title",
                            "What is wrong",
                        )
                        .required(true),
                    ),
            ),
        CreateCommand::new("deploy")
            .description("Deploy")
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "env", "Where")
                    .required(true)
                    .set_autocomplete(true),
            ),
        CreateCommand::new("confirm").description("Asks with a button"),
        CreateCommand::new("feedback").description("Asks with a modal"),
        CreateCommand::new("noop").description("Never answered"),
    ]
}

fn ticket_title(c: &serenity::all::CommandInteraction) -> String {
    match c.data.options.first().map(|o| &o.value) {
        Some(CommandDataOptionValue::SubCommand(opts)) => match opts.first().map(|o| &o.value) {
            Some(CommandDataOptionValue::String(s)) => s.clone(),
            other => format!("{other:?}"),
        },
        other => format!("{other:?}"),
    }
}

#[serenity::async_trait]
impl EventHandler for Ops {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let guild = ready.guilds[0].id;
        if let Err(e) = guild.set_commands(&ctx.http, commands()).await {
            lock(&self.errors).push(format!("register: {e}"));
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let http = &ctx.http;
        let r = match interaction {
            Interaction::Command(c) => match c.data.name.as_str() {
                "ping" => {
                    let m = CreateInteractionResponseMessage::new()
                        .content("pong")
                        .ephemeral(true);
                    c.create_response(http, CreateInteractionResponse::Message(m))
                        .await
                }
                "ticket" => {
                    let title = ticket_title(&c);
                    async {
                        c.defer_ephemeral(http).await?;
                        let edit = EditInteractionResponse::new()
                            .content(format!("ticket opened: {title}"));
                        c.edit_response(http, edit).await?;
                        let f = CreateInteractionResponseFollowup::new().content("assigned");
                        c.create_followup(http, f).await.map(|_| ())
                    }
                    .await
                }
                "confirm" => {
                    let row = CreateActionRow::Buttons(vec![
                        CreateButton::new("confirm:yes").label("Yes")
                    ]);
                    let m = CreateInteractionResponseMessage::new()
                        .content("Sure?")
                        .components(vec![row]);
                    c.create_response(http, CreateInteractionResponse::Message(m))
                        .await
                }
                "feedback" => {
                    let input = CreateInputText::new(InputTextStyle::Paragraph, "Say", "text");
                    let modal = CreateModal::new("feedback:form", "Feedback")
                        .components(vec![CreateActionRow::InputText(input)]);
                    c.create_response(http, CreateInteractionResponse::Modal(modal))
                        .await
                }
                _ => Ok(()),
            },
            Interaction::Autocomplete(c) => {
                let typed = c.data.autocomplete().map_or("", |o| o.value).to_string();
                let mut r = CreateAutocompleteResponse::new();
                for env in ["prod", "preprod", "staging"] {
                    if env.starts_with(&typed) {
                        r = r.add_string_choice(env, env);
                    }
                }
                c.create_response(http, CreateInteractionResponse::Autocomplete(r))
                    .await
            }
            Interaction::Component(c) => {
                let m = CreateInteractionResponseMessage::new()
                    .content(format!("confirmed by {}", c.user.name))
                    .components(vec![]);
                c.create_response(http, CreateInteractionResponse::UpdateMessage(m))
                    .await
            }
            Interaction::Modal(m) => {
                let values: Vec<String> = m
                    .data
                    .components
                    .iter()
                    .flat_map(|row| row.components.iter())
                    .filter_map(|c| match c {
                        serenity::all::ActionRowComponent::InputText(t) => t.value.clone(),
                        _ => None,
                    })
                    .collect();
                let r = CreateInteractionResponseMessage::new()
                    .content(format!("thanks: {}", values.join(" / ")));
                m.create_response(http, CreateInteractionResponse::Message(r))
                    .await
            }
            _ => Ok(()),
        };
        if let Err(e) = r {
            lock(&self.errors).push(format!("interaction: {e}"));
        }
    }
}

struct Bot {
    shards: Arc<ShardManager>,
    http: Arc<Http>,
    run: tokio::task::JoinHandle<serenity::Result<()>>,
}

impl Bot {
    /// The client as the bot builds it: the proxy, the ratelimiter off,
    /// `new_with_http`, `start()`.
    async fn start(fake: &FakeDiscord, handler: Ops) -> Bot {
        let http = HttpBuilder::new(TOKEN)
            .proxy(format!("http://127.0.0.1:{}", fake.port))
            .ratelimiter_disabled(true)
            .build();
        let mut client: Client = ClientBuilder::new_with_http(http, GatewayIntents::GUILDS)
            .event_handler(handler)
            .await
            .expect("build the client");
        let shards = client.shard_manager.clone();
        let http = client.http.clone();
        let run = tokio::spawn(async move { client.start().await });
        Bot { shards, http, run }
    }

    async fn stop(self) {
        self.shards.shutdown_all().await;
        let ended = tokio::time::timeout(T, self.run)
            .await
            .expect("client.start() returns after shutdown_all");
        ended.expect("the client task").expect("client.start()");
    }
}

fn ping(id: u64, token: &str) -> Value {
    fx::slash(
        id,
        token,
        GENERAL,
        fx::GUILD_ID,
        fx::USER_ID,
        fx::USER_NAME,
        &[],
        &["ping"],
        &[],
    )
}

/// (status, Discord's code, message) of a refused request.
fn refused<T: std::fmt::Debug>(r: serenity::Result<T>) -> (u16, isize, String) {
    match r {
        Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(e))) => {
            (e.status_code.as_u16(), e.error.code, e.error.message)
        }
        other => panic!("expected Discord to refuse, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenity_connects_registers_and_answers() {
    bounded(async {
        let fake = FakeDiscord::start();
        let ops = Ops::default();
        let bot = Bot::start(&fake, ops.clone()).await;

        fake.wait_ready_async(T).await;
        assert_eq!(
            fake.gateway_connections(),
            vec!["/gateway?v=10".to_string()]
        );
        assert_eq!(fake.identify_intents(), Some(GatewayIntents::GUILDS.bits()));
        let identify = &fake.identifies()[0];
        assert_eq!(identify["token"], "Bot fake-token");
        assert_eq!(identify["shard"], json!([0, 1]));

        // Registered in the guild on READY, with the application id from READY.
        let cmds = fake.wait_commands_async(T).await;
        let names: Vec<&str> = cmds.iter().filter_map(|c| c["name"].as_str()).collect();
        assert_eq!(
            names,
            ["ping", "ticket", "deploy", "confirm", "feedback", "noop"]
        );
        assert_eq!(cmds[0]["guild_id"], fx::GUILD_ID.to_string());
        assert_eq!(cmds[1]["options"][0]["type"], 1);
        assert_eq!(cmds[1]["options"][0]["options"][0]["name"], "title");
        assert_eq!(fake.command_registrations(), 1);
        assert_eq!(
            fake.count(&format!(
                "PUT /api/v10/applications/{}/guilds/{}/commands",
                fx::APP_ID,
                fx::GUILD_ID
            )),
            1
        );

        // A slash command, answered with an ephemeral message.
        fake.dispatch("INTERACTION_CREATE", ping(7001, "tok-ping"));
        let cb = fake.wait_callback_async(7001, T).await;
        assert_eq!(cb["type"], 4);
        assert_eq!(cb["data"]["content"], "pong");
        assert_eq!(cb["data"]["flags"], 64);
        let reply = fake.original("tok-ping").expect("the reply");
        assert_eq!(reply["content"], "pong");
        assert_eq!(reply["flags"], 64);

        // The bot's Http against the channel routes.
        let http = bot.http.clone();
        let general = ChannelId::new(GENERAL);
        let send = || {
            CreateMessage::new()
                .content("deploy started")
                .nonce(Nonce::String("deploy-42".into()))
                .enforce_nonce(true)
        };
        let first = general.send_message(&http, send()).await.unwrap();
        let again = general.send_message(&http, send()).await.unwrap();
        assert_eq!(
            first.id, again.id,
            "the same nonce gives the first message back"
        );
        let msgs = fake.messages(GENERAL);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0]["nonce"], "deploy-42");
        assert_eq!(msgs[0]["enforce_nonce"], true);
        assert_eq!(fake.deduplicated(), 1);

        let edited = general
            .edit_message(&http, first.id, EditMessage::new().content("deploy done"))
            .await
            .unwrap();
        assert_eq!(edited.content, "deploy done");
        assert!(edited.edited_timestamp.is_some());
        let m = fake.message(first.id.get()).unwrap();
        assert_eq!(
            (m["content"].as_str(), m["edits"].as_u64()),
            (Some("deploy done"), Some(1))
        );

        let thread = general
            .create_thread_from_message(&http, first.id, CreateThread::new("deploy 42"))
            .await
            .unwrap();
        assert_eq!(thread.kind, ChannelType::PublicThread);
        assert_eq!(thread.parent_id, Some(general));
        assert_eq!(thread.name, "deploy 42");
        assert_eq!(fake.threads(GENERAL).len(), 1);
        assert_eq!(
            fake.message(first.id.get()).unwrap()["thread_id"],
            thread.id.to_string()
        );
        thread
            .id
            .send_message(&http, CreateMessage::new().content("log line"))
            .await
            .unwrap();
        assert_eq!(fake.messages(thread.id.get()).len(), 1);

        bot.stop().await;
        assert_eq!(ops.errors(), Vec::<String>::new());
        assert_eq!(fake.unexpected(), Vec::<String>::new());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interaction_flows() {
    bounded(async {
        let fake = FakeDiscord::start();
        let ops = Ops::default();
        let bot = Bot::start(&fake, ops.clone()).await;
        fake.wait_commands_async(T).await;
        let slash = |id: u64, token: &str, path: &[&str], options: &[(&str, Value)]| {
            fx::slash(
                id,
                token,
                GENERAL,
                fx::GUILD_ID,
                fx::USER_ID,
                fx::USER_NAME,
                &[],
                path,
                options,
            )
        };

        // Deferred, then edited, then a follow-up.
        fake.dispatch(
            "INTERACTION_CREATE",
            slash(
                7101,
                "tok-ticket",
                &["ticket", "open"],
                &[("title", json!("db-1 disk full"))],
            ),
        );
        let cb = fake.wait_callback_async(7101, T).await;
        assert_eq!(cb["type"], 5);
        assert_eq!(cb["data"]["flags"], 64);
        let reply = fake.wait_reply_async("tok-ticket", T).await;
        assert_eq!(reply["content"], "ticket opened: db-1 disk full");
        assert_eq!(reply["edits"], 1);
        assert_eq!(reply["flags"], 64, "still ephemeral, no longer loading");
        let f = fake.wait_followups_async("tok-ticket", 1, T).await;
        assert_eq!(f[0]["content"], "assigned");

        // Autocomplete.
        fake.dispatch(
            "INTERACTION_CREATE",
            fx::autocomplete(
                7102,
                "tok-ac",
                GENERAL,
                fx::GUILD_ID,
                fx::USER_ID,
                fx::USER_NAME,
                &[],
                &["deploy"],
                &[("env", json!("pr"))],
                "env",
            ),
        );
        let cb = fake.wait_callback_async(7102, T).await;
        assert_eq!(cb["type"], 8);
        assert_eq!(
            cb["data"]["choices"],
            json!([{"name": "prod", "value": "prod"}, {"name": "preprod", "value": "preprod"}])
        );

        // A button on the bot's reply; the click updates that message.
        fake.dispatch(
            "INTERACTION_CREATE",
            slash(7103, "tok-confirm", &["confirm"], &[]),
        );
        assert_eq!(fake.wait_callback_async(7103, T).await["type"], 4);
        let asked = fake.original("tok-confirm").unwrap();
        assert_eq!(
            asked["components"][0]["components"][0]["custom_id"],
            "confirm:yes"
        );
        let click = fx::with_ids(
            fx::button("confirm:yes", &asked["message"]),
            7104,
            "tok-click",
        );
        fake.dispatch("INTERACTION_CREATE", click);
        let cb = fake.wait_callback_async(7104, T).await;
        assert_eq!(cb["type"], 7);
        let updated = fake.original("tok-confirm").unwrap();
        assert_eq!(
            updated["content"],
            format!("confirmed by {}", fx::USER_NAME)
        );
        assert_eq!(updated["components"], json!([]));
        assert_eq!(updated["edits"], 1);

        // A modal, then its submission.
        fake.dispatch(
            "INTERACTION_CREATE",
            slash(7105, "tok-fb", &["feedback"], &[]),
        );
        let cb = fake.wait_callback_async(7105, T).await;
        assert_eq!(cb["type"], 9);
        assert_eq!(cb["data"]["custom_id"], "feedback:form");
        let submit = fx::modal_submit("feedback:form", &[("text", "more graphs")]);
        let submit_id: u64 = submit["id"].as_str().unwrap().parse().unwrap();
        fake.dispatch("INTERACTION_CREATE", submit);
        let cb = fake.wait_callback_async(submit_id, T).await;
        assert_eq!(cb["data"]["content"], "thanks: more graphs");

        // Answering twice, as Discord refuses it.
        fake.dispatch(
            "INTERACTION_CREATE",
            slash(7106, "tok-noop", &["noop"], &[]),
        );
        let answer = json!({"type": 4, "data": {"content": "first"}});
        let http = fake.http();
        http.create_interaction_response(7106.into(), "tok-noop", &answer, vec![])
            .await
            .unwrap();
        let again = http
            .create_interaction_response(7106.into(), "tok-noop", &answer, vec![])
            .await;
        assert_eq!(
            refused(again),
            (
                400,
                40060,
                "Interaction has already been acknowledged.".to_string()
            )
        );
        // A follow-up before any answer: Unknown Webhook.
        fake.dispatch(
            "INTERACTION_CREATE",
            slash(7107, "tok-early", &["noop"], &[]),
        );
        let early = http
            .create_followup_message("tok-early", &json!({"content": "x"}), vec![])
            .await;
        assert_eq!(refused(early).1, 10015);

        // Too late: the bot's answer is refused and serenity reports it.
        fake.set_interaction_deadline(Some(Duration::ZERO));
        fake.dispatch("INTERACTION_CREATE", ping(7108, "tok-late"));
        let refusal = fake
            .wait_until_async("the late callback", T, |f| {
                f.callbacks()
                    .into_iter()
                    .find(|c| c["interaction_id"] == "7108")
            })
            .await;
        assert_eq!(refusal["status"], 404);
        assert_eq!(refusal["error"]["code"], 10062);
        fake.wait_until_async("the bot to see the error", T, |_| {
            ops.errors()
                .iter()
                .any(|e| e.contains("Unknown interaction"))
                .then_some(())
        })
        .await;

        bot.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_messages_like_discord() {
    bounded(async {
        let fake = FakeDiscord::start();
        fake.add_channel(500, "alerts");
        let http = fake.http();
        let alerts = ChannelId::new(500);

        // The same nonce without enforce_nonce makes two messages.
        for _ in 0..2 {
            let m = CreateMessage::new()
                .content("firing")
                .nonce(Nonce::Number(9));
            alerts.send_message(&http, m).await.unwrap();
        }
        let two = fake.wait_messages_async(500, 2, T).await;
        assert_eq!(two[0]["nonce"], 9);
        assert_ne!(two[0]["id"], two[1]["id"]);
        assert_eq!(fake.deduplicated(), 0);

        // Who gets pinged.
        let text = "@everyone <@42> <@!43> <@&77> look";
        let loud = alerts
            .send_message(&http, CreateMessage::new().content(text))
            .await
            .unwrap();
        assert!(loud.mention_everyone);
        let p = &fake.message(loud.id.get()).unwrap()["pings"];
        assert_eq!(
            p,
            &json!({"everyone": true, "users": ["42", "43"], "roles": ["77"]})
        );
        let quiet = CreateMessage::new()
            .content(text)
            .allowed_mentions(CreateAllowedMentions::new().users([43u64]));
        let quiet = alerts.send_message(&http, quiet).await.unwrap();
        assert!(!quiet.mention_everyone);
        let rec = fake.message(quiet.id.get()).unwrap();
        assert_eq!(
            rec["pings"],
            json!({"everyone": false, "users": ["43"], "roles": []})
        );
        assert_eq!(rec["allowed_mentions"]["users"], json!(["43"]));

        // A reply, and a reply to a message that does not exist.
        let reply = CreateMessage::new()
            .content("ack")
            .reference_message((alerts, quiet.id));
        let reply = alerts.send_message(&http, reply).await.unwrap();
        assert_eq!(
            reply.referenced_message.as_ref().map(|m| m.id),
            Some(quiet.id)
        );
        let rec = fake.message(reply.id.get()).unwrap();
        assert_eq!(rec["message_reference"]["message_id"], quiet.id.to_string());
        let dangling = CreateMessage::new()
            .content("ack")
            .reference_message((alerts, MessageId::new(1)));
        let (status, code, _) = refused(alerts.send_message(&http, dangling).await);
        assert_eq!((status, code), (400, 50035));

        // Embeds, components and files come back as serenity reads them.
        let row = CreateActionRow::Buttons(vec![
            CreateButton::new("ack:1").label("Ack"),
            CreateButton::new_link("https://runbooks.example/db").label("Runbook"),
        ]);
        let rich = CreateMessage::new()
            .embed(
                serenity::all::CreateEmbed::new()
                    .title("db-1")
                    .description("disk 97%"),
            )
            .components(vec![row])
            .add_file(CreateAttachment::bytes(
                b"line 1\nline 2\n".to_vec(),
                "log.txt",
            ));
        let rich = alerts.send_message(&http, rich).await.unwrap();
        assert_eq!(rich.embeds[0].title.as_deref(), Some("db-1"));
        assert_eq!(rich.components[0].components.len(), 2);
        assert_eq!(rich.attachments[0].filename, "log.txt");
        let rec = fake.message(rich.id.get()).unwrap();
        assert_eq!(rec["files"][0]["content"], "line 1\nline 2\n");
        assert_eq!(rec["files"][0]["size"], 14);

        // Threads: one per message, not in a thread.
        let t = alerts
            .create_thread_from_message(&http, rich.id, CreateThread::new("db-1"))
            .await
            .unwrap();
        assert_eq!(t.id.get(), rich.id.get(), "a thread has its message's id");
        let again = alerts
            .create_thread_from_message(&http, rich.id, CreateThread::new("db-1 again"))
            .await;
        assert_eq!(refused(again).1, 160004);
        let starter =
            t.id.send_message(&http, CreateMessage::new().content("in thread"))
                .await
                .unwrap();
        let nested =
            t.id.create_thread_from_message(&http, starter.id, CreateThread::new("nested"))
                .await;
        assert_eq!(refused(nested).1, 50024);
        let ch = http.get_channel(t.id).await.unwrap();
        assert!(ch
            .guild()
            .is_some_and(|g| g.kind == ChannelType::PublicThread));

        // Edits: counted, and refused when they would leave nothing.
        alerts
            .edit_message(&http, loud.id, EditMessage::new().content("resolved"))
            .await
            .unwrap();
        alerts
            .edit_message(&http, loud.id, EditMessage::new().content("resolved (2)"))
            .await
            .unwrap();
        let rec = fake.message(loud.id.get()).unwrap();
        assert_eq!(rec["edits"], 2);
        assert_eq!(rec["edit_bodies"][0]["content"], "resolved");
        let emptied = alerts
            .edit_message(&http, loud.id, EditMessage::new().content(""))
            .await;
        assert_eq!(refused(emptied).1, 50006);
        let unknown = alerts
            .edit_message(&http, MessageId::new(5), EditMessage::new().content("x"))
            .await;
        assert_eq!(
            refused(unknown),
            (404, 10008, "Unknown Message".to_string())
        );

        assert_eq!(fake.unexpected(), Vec::<String>::new());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_like_discord() {
    bounded(async {
        let fake = FakeDiscord::start();
        fake.add_channel(600, "secret");
        fake.forbid_channel(600);
        let http = fake.http();
        let general = ChannelId::new(GENERAL);
        let hi = || CreateMessage::new().content("hi");

        fake.fail_next(500, 2);
        for _ in 0..2 {
            let (status, _, msg) = refused(general.send_message(&http, hi()).await);
            assert_eq!((status, msg.as_str()), (500, "500: Internal Server Error"));
        }
        general.send_message(&http, hi()).await.unwrap();

        // With the ratelimiter off serenity does not retry a 429, and
        // Discord's 429 body has no code, so serenity says -1.
        fake.rate_limit_next(1, 0.25);
        let (status, code, _) = refused(general.send_message(&http, hi()).await);
        assert_eq!((status, code), (429, -1));
        let raw = reqwest::Client::new()
            .post(format!("{}/api/v10/channels/{GENERAL}/messages", fake.base))
            .header("authorization", "Bot x")
            .json(&json!({"content": "hi"}));
        fake.rate_limit_next(1, 0.25);
        let resp = raw.send().await.unwrap();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["retry_after"], 0.25);
        assert_eq!(fake.messages(GENERAL).len(), 1);

        let forbidden = ChannelId::new(600).send_message(&http, hi()).await;
        assert_eq!(
            refused(forbidden),
            (403, 50013, "Missing Permissions".to_string())
        );
        let nowhere = ChannelId::new(601).send_message(&http, hi()).await;
        assert_eq!(
            refused(nowhere),
            (404, 10003, "Unknown Channel".to_string())
        );

        // What serenity's builders let through but Discord refuses.
        let long = json!({"content": "x".repeat(2001)});
        let e = http.send_message(general, vec![], &long).await;
        let Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(e))) = e else {
            panic!("a 2001-character message was accepted")
        };
        assert_eq!(e.error.code, 50035);
        assert_eq!(e.error.errors[0].path, "content");
        assert_eq!(e.error.errors[0].code, "BASE_TYPE_MAX_LENGTH");
        let empty = http
            .send_message(general, vec![], &json!({"content": ""}))
            .await;
        assert_eq!(
            refused(empty),
            (400, 50006, "Cannot send an empty message".to_string())
        );
        let long_nonce = CreateMessage::new()
            .content("hi")
            .nonce(Nonce::String("opsbot-12345678901234567890".into()))
            .enforce_nonce(true);
        let (status, code, _) = refused(general.send_message(&http, long_nonce).await);
        assert_eq!((status, code), (400, 50035), "a nonce over 25 characters");
        let big = serenity::all::CreateEmbed::new().description("y".repeat(4000));
        let too_big = CreateMessage::new().embeds(vec![big.clone(), big]);
        assert_eq!(refused(general.send_message(&http, too_big).await).1, 50035);

        // Invalid command registrations.
        let guild = GuildId::new(fx::GUILD_ID);
        let upper = guild
            .set_commands(&http, vec![CreateCommand::new("Deploy").description("d")])
            .await;
        assert_eq!(refused(upper).1, 50035);
        let undescribed = guild
            .set_commands(&http, vec![CreateCommand::new("deploy")])
            .await;
        assert_eq!(refused(undescribed).1, 50035);
        let optional_first = CreateCommand::new("deploy")
            .description("d")
            .set_options(vec![
                CreateCommandOption::new(CommandOptionType::String, "a", "a"),
                CreateCommandOption::new(CommandOptionType::String, "b", "b").required(true),
            ]);
        assert_eq!(
            refused(guild.set_commands(&http, vec![optional_first]).await).1,
            50035
        );
        // A command with subcommands cannot be invoked itself: it takes no
        // other options beside them.
        let mixed = CreateCommand::new("build")
            .description("d")
            .set_options(vec![
                CreateCommandOption::new(CommandOptionType::String, "job", "j").required(true),
                CreateCommandOption::new(CommandOptionType::SubCommand, "cancel", "c"),
            ]);
        assert_eq!(
            refused(guild.set_commands(&http, vec![mixed]).await).1,
            50035
        );
        let nested = CreateCommand::new("build")
            .description("d")
            .set_options(vec![CreateCommandOption::new(
                CommandOptionType::SubCommand,
                "run",
                "r",
            )
            .add_sub_option(CreateCommandOption::new(
                CommandOptionType::SubCommand,
                "now",
                "n",
            ))]);
        assert_eq!(
            refused(guild.set_commands(&http, vec![nested]).await).1,
            50035
        );
        let elsewhere = GuildId::new(1).set_commands(&http, commands()).await;
        assert_eq!(refused(elsewhere).1, 50001);
        assert_eq!(fake.command_registrations(), 0);

        // Unknown routes are answered 404 and recorded.
        let (status, _, _) = refused(http.get_guild(guild).await);
        assert_eq!(status, 404);
        assert_eq!(
            fake.take_unexpected(),
            vec![format!("GET /api/v10/guilds/{}", fx::GUILD_ID)]
        );

        // No token.
        let anon = reqwest::Client::new()
            .post(format!("{}/api/v10/channels/{GENERAL}/messages", fake.base))
            .json(&json!({"content": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(anon.status(), 401);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_heartbeats_resumes_and_drops() {
    bounded(async {
        let fake = FakeDiscord::start();
        fake.set_heartbeat_interval(200);
        let ops = Ops::default();
        let bot = Bot::start(&fake, ops.clone()).await;
        fake.wait_commands_async(T).await;
        fake.dispatch("INTERACTION_CREATE", ping(7201, "tok-a"));
        fake.wait_callback_async(7201, T).await;

        // Heartbeats carry the last sequence number and get acked: still
        // one connection after several.
        let beats = fake
            .wait_until_async("3 heartbeats, one after the ping", T, |f| {
                let beats = f.heartbeats();
                // READY is sequence number 1, the ping 2.
                (beats.len() >= 3 && beats.contains(&json!(2))).then_some(beats)
            })
            .await;
        assert!(beats.iter().all(|b| b == 1 || b == 2), "{beats:?}");
        assert_eq!(fake.gateway_connections().len(), 1);

        // A close with 4000: serenity comes back and resumes.
        fake.close_gateway(4000);
        fake.wait_until_async("a resume", T, |f| (f.resumes() > 0).then_some(()))
            .await;
        assert_eq!(fake.gateway_connections().len(), 2);
        assert_eq!(fake.identifies().len(), 1, "resumed, not identified again");
        fake.dispatch("INTERACTION_CREATE", ping(7202, "tok-b"));
        assert_eq!(fake.wait_callback_async(7202, T).await["type"], 4);

        // A payload serenity cannot parse is refused by dispatch...
        let mut bad = ping(7203, "tok-c");
        bad.as_object_mut().unwrap().remove("entitlements");
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fake.dispatch("INTERACTION_CREATE", bad.clone())
        }));
        let msg = refused.unwrap_err();
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("entitlements"), "{msg}");
        // ...because serenity drops it without a word: sent anyway, it is
        // never answered, while the next one is.
        fake.dispatch_unchecked("INTERACTION_CREATE", bad);
        fake.dispatch("INTERACTION_CREATE", ping(7204, "tok-d"));
        fake.wait_callback_async(7204, T).await;
        assert!(fake
            .callbacks()
            .iter()
            .all(|c| c["interaction_id"] != "7203"));

        bot.stop().await;
        assert_eq!(ops.errors(), Vec::<String>::new());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_routes_parse() {
    bounded(async {
        let fake = FakeDiscord::start();
        let http = fake.http();
        let gw = http.get_bot_gateway().await.unwrap();
        assert_eq!(gw.url, fake.gateway_url());
        assert_eq!(gw.shards, 1);
        let app = http.get_current_application_info().await.unwrap();
        assert_eq!(app.id.get(), fx::APP_ID);
        let me = http.get_current_user().await.unwrap();
        assert_eq!((me.id.get(), me.bot), (fx::BOT_ID, true));
        let guild = GuildId::new(fx::GUILD_ID);
        assert!(guild.get_commands(&http).await.unwrap().is_empty());
        let set = serenity::all::Command::set_global_commands(&http, commands())
            .await
            .unwrap();
        assert_eq!(set.len(), commands().len());
        assert_eq!(set[0].id.get(), fx::command_id("ping"));
        assert_eq!(fake.commands()[0]["guild_id"], Value::Null);
        let general = http.get_channel(ChannelId::new(GENERAL)).await.unwrap();
        assert_eq!(general.guild().map(|g| g.name), Some("general".to_string()));
    })
    .await
}

/// The blocking waits, from a plain test with the bot on its own runtime.
#[test]
fn blocking_waits_from_a_plain_test() {
    let fake = FakeDiscord::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bot = rt.block_on(bounded(Bot::start(&fake, Ops::default())));
    fake.wait_ready(T);
    assert_eq!(fake.wait_commands(T).len(), commands().len());
    fake.dispatch("INTERACTION_CREATE", ping(7301, "tok-sync"));
    assert_eq!(fake.wait_callback(7301, T)["data"]["content"], "pong");
    assert_eq!(fake.wait_reply("tok-sync", T)["content"], "pong");
    rt.block_on(bounded(bot.stop()));
}

#[test]
#[should_panic(expected = "timed out after 50ms waiting for 1 message(s) in channel")]
fn a_wait_that_times_out_says_so() {
    let fake = FakeDiscord::start();
    fake.wait_messages(GENERAL, 1, Duration::from_millis(50));
}

#[test]
#[should_panic(expected = "no gateway session has identified")]
fn dispatch_without_a_gateway_session_fails() {
    let fake = FakeDiscord::start();
    fake.dispatch("INTERACTION_CREATE", ping(7401, "t"));
}
