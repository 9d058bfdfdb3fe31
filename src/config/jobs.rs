//! Jobs and custom commands: one TOML file each in `commands/`. A job is a
//! program and its arguments with typed, validated parameters, run by the
//! local runner (never through a shell); each becomes a chat command too.
//!
//! ```toml
//! # commands/build-web.toml
//! description = "Build the web app"
//! team = "backend"                 # the owning team
//! program = "scripts/build-web.sh" # relative to commands/
//! args = ["--ref", "{ref}"]        # {param} is replaced inside each argument
//! timeout = "2m"
//! who = ["operators", "team:backend"]
//! [params.ref]
//! description = "The git ref"
//! pattern = '^[A-Za-z0-9._/-]{1,100}$'
//! default = "main"
//! ```
//!
//! A job starts with a cleared environment: the safe set [`SAFE_ENV`] passed
//! through from the bot, what its file names (`env = ["JAVA_HOME"]` to pass
//! through, or `[env]` with `NAME = true` to pass through, `NAME = false` to
//! leave out, `NAME = "value"` to set), and `OPSBOT_RUN` and
//! `OPSBOT_PARAM_*`. No secret the config names ever reaches it.
//!
//! A job may run elsewhere instead (`backend`): `local` (the default),
//! `jenkins` (with `jenkins_job`, its full name), or a forge's own CI, in a
//! repository of bot.toml (`repo`, a `[repos.NAME]` with its `token_env`):
//!
//! ```toml
//! # commands/web-actions.toml: a GitHub Actions workflow
//! description = "The web app's workflow"
//! team = "backend"
//! backend = "github_actions"
//! repo = "web"                   # [repos.web], provider = "github"
//! workflow = "ci.yml"            # .github/workflows/ci.yml, on: workflow_dispatch
//! ref = "{ref}"                  # the branch or tag to run on (default: {ref}, else main_ref)
//! id_input = "opsbot_run"        # the input that gets the run id (RUN-7); the
//!                                # workflow's `run-name` should show it, so the
//!                                # bot finds the run it started
//! poll = "10s"                   # how often it is looked at (backs off to 4×)
//! [inputs]                       # workflow_dispatch inputs, {param} replaced
//! environment = "{env}"
//!
//! # commands/web-pipeline.toml: a GitLab CI pipeline
//! backend = "gitlab_ci"
//! repo = "web-gl"                # provider = "gitlab"
//! trigger_token_env = "WEB_TRIGGER_TOKEN"  # the pipeline trigger token
//! [inputs]                       # the pipeline's variables
//! DEPLOY_ENV = "{env}"
//! ```
//!
//! The bot follows the run to its end (the failed job's log tail, cancel,
//! followed again after a restart, never started twice).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::written::Written;
use crate::commands::CommandName;
use crate::config::{Org, Problem, Severity, Validator};
pub use crate::domain::job::{describe, Allowed, Backend, Job, JobEnv, Param, SAFE_ENV};
use crate::domain::{TeamName, UserName};

/// The longest a job may be given to run (`timeout`): a day.
pub const MAX_TIMEOUT_SECS: u64 = 86400;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    description: String,
    #[serde(default)]
    team: Option<Written<String>>,
    /// `local` (the default) or `jenkins`.
    #[serde(default)]
    backend: Option<Written<String>>,
    /// For the local runner: the program.
    #[serde(default)]
    program: Option<Written<String>>,
    /// For Jenkins: the job's full name, folders with `/`.
    #[serde(default)]
    jenkins_job: Option<Written<String>>,
    /// For a forge's CI: the `[repos.NAME]` it runs in.
    #[serde(default)]
    repo: Option<Written<String>>,
    /// For GitHub Actions: the workflow's file.
    #[serde(default)]
    workflow: Option<Written<String>>,
    /// For a forge's CI: the ref to run on.
    #[serde(default, rename = "ref")]
    git_ref: Option<Written<String>>,
    /// For a forge's CI: the workflow's inputs or the pipeline's variables.
    #[serde(default)]
    inputs: BTreeMap<Written<String>, Written<String>>,
    /// For GitHub Actions: the input that carries the run id.
    #[serde(default)]
    id_input: Option<Written<String>>,
    /// For GitLab CI: the pipeline trigger token's env var.
    #[serde(default)]
    trigger_token_env: Option<Written<String>>,
    /// For a forge's CI: how often a run is looked at.
    #[serde(default)]
    poll: Option<Written<String>>,
    #[serde(default)]
    args: Vec<Written<String>>,
    #[serde(default = "default_timeout")]
    timeout: Written<String>,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    who: Option<Vec<Written<String>>>,
    #[serde(default = "default_main_ref")]
    main_ref: String,
    #[serde(default)]
    params: BTreeMap<String, RawParam>,
    /// `env = ["NAME", …]` (passed through), or `[env]` with `NAME = true`
    /// (passed through), `NAME = false` (left out) or `NAME = "value"`
    /// (set); read by [`job_env`], which names a wrong entry.
    #[serde(default)]
    env: Option<Written<RawEnv>>,
}

/// A job's `env` as written: a list, a table, or something else (which
/// [`job_env`] refuses with its own words rather than serde's). Each entry
/// keeps its place, which an untagged enum would lose.
#[derive(Debug)]
enum RawEnv {
    List(Vec<Written<toml::Value>>),
    Table(BTreeMap<Written<String>, Written<toml::Value>>),
    Other,
}

impl<'de> Deserialize<'de> for RawEnv {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawEnv;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of names or a table")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<RawEnv, A::Error> {
                let mut list = Vec::new();
                while let Some(item) = a.next_element()? {
                    list.push(item);
                }
                Ok(RawEnv::List(list))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<RawEnv, A::Error> {
                let mut table = BTreeMap::new();
                let mut placed = true;
                while let Some((k, v)) = a.next_entry::<Written<String>, _>()? {
                    placed &= k.span().is_some();
                    table.insert(k, v);
                }
                // Keys toml cannot place are no table of the file: a date.
                Ok(if placed {
                    RawEnv::Table(table)
                } else {
                    RawEnv::Other
                })
            }
            fn visit_bool<E>(self, _: bool) -> Result<RawEnv, E> {
                Ok(RawEnv::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<RawEnv, E> {
                Ok(RawEnv::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<RawEnv, E> {
                Ok(RawEnv::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<RawEnv, E> {
                Ok(RawEnv::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<RawEnv, E> {
                Ok(RawEnv::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// One entry of a job's `env`.
enum EnvEntry<'a> {
    Pass,
    Leave,
    Set(&'a str),
}

fn default_timeout() -> Written<String> {
    String::from("10m").into()
}
fn default_main_ref() -> String {
    "main".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    description: String,
    pattern: Written<String>,
    #[serde(default)]
    default: Option<Written<String>>,
}

/// Names no job may take: the built-in commands.
fn reserved(name: &str) -> bool {
    CommandName::ALL.iter().any(|c| {
        let s = c.spec();
        s.group.unwrap_or(s.name) == name
    }) || matches!(
        name,
        "build" | "runs" | "deploy" | "rollback" | "approve" | "deny"
    )
}

/// Loads every `*.toml` in `dir` (a missing folder is no jobs).
/// `secret_vars` are the env vars the config names as secrets: a job may not
/// ask for one.
pub fn load_dir(
    dir: &Path,
    org: &Org,
    secret_vars: &[String],
) -> (BTreeMap<String, Job>, Vec<Problem>) {
    load_dir_in(dir, org, secret_vars, &[])
}

/// As [`load_dir`], with bot.toml's repositories (name, provider as
/// written), which forge CI jobs name.
pub fn load_dir_in(
    dir: &Path,
    org: &Org,
    secret_vars: &[String],
    repos: &[(String, String)],
) -> (BTreeMap<String, Job>, Vec<Problem>) {
    let mut jobs = BTreeMap::new();
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (jobs, problems);
    };
    // Programs and working folders must not depend on where the bot starts.
    let dir = &std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    for file in files {
        let src = match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) => {
                problems.push(Problem {
                    severity: Severity::Error,
                    file: file.clone(),
                    line: None,
                    column: None,
                    key: String::new(),
                    message: format!("cannot read it: {e}"),
                });
                continue;
            }
        };
        match load_one(dir, &file, &src, org, secret_vars, repos) {
            Ok((job, mut warnings)) => {
                problems.append(&mut warnings);
                jobs.insert(job.name.clone(), job);
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    (jobs, problems)
}

fn load_one(
    dir: &Path,
    file: &Path,
    src: &str,
    org: &Org,
    secret_vars: &[String],
    repos: &[(String, String)],
) -> Result<(Job, Vec<Problem>), Vec<Problem>> {
    let raw: RawJob = crate::config::deserialize_all(file, src)?;
    let mut v = Validator::new(file, src);
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    if UserName::parse(&name).is_err() || reserved(&name) {
        v.error(
            "",
            None,
            format!("`{name}` cannot name a command: use lowercase letters, digits and `-`, and no built-in name (ticket, alert, help, build, runs, deploy, …)"),
        );
    }
    let team = raw.team.as_ref().and_then(|t| match TeamName::parse(t) {
        Ok(t) if org.teams.contains_key(&t) => Some(t),
        _ => {
            let known: Vec<&str> = org.teams.keys().map(|t| t.as_str()).collect();
            v.error("team", t.span(), crate::config::no_team(t, &known));
            None
        }
    });
    let timeout = match humantime::parse_duration(&raw.timeout) {
        Ok(d) if d.as_secs() >= 1 && d.as_secs() <= MAX_TIMEOUT_SECS => d,
        _ => {
            v.error(
                "timeout",
                raw.timeout.span(),
                format!(
                    "`{}` is not a duration from 1s to 1d, such as \"2m\"",
                    raw.timeout
                ),
            );
            Duration::from_secs(60)
        }
    };
    let mut params = Vec::new();
    for (pname, p) in &raw.params {
        match crate::domain::alert::anchored(&p.pattern) {
            Ok(re) => {
                if let Some(d) = &p.default {
                    if !re.is_match(d) {
                        v.error(
                            format!("params.{pname}.default"),
                            d.span(),
                            format!("the default `{d}` does not match the pattern"),
                        );
                    }
                }
                params.push(Param {
                    name: pname.clone(),
                    description: p.description.clone(),
                    pattern: re,
                    default: p.default.as_ref().map(|d| d.to_string()),
                });
            }
            Err(e) => v.error(
                format!("params.{pname}.pattern"),
                p.pattern.span(),
                format!("the regular expression does not compile: {e}"),
            ),
        }
    }
    for (i, a) in raw.args.iter().enumerate() {
        let mut rest = a.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let pname = &rest[open + 1..open + close];
            if !raw.params.contains_key(pname) {
                v.error(
                    format!("args[{i}]"),
                    a.span(),
                    format!("`{{{pname}}}` names no parameter; declare [params.{pname}]"),
                );
            }
            rest = &rest[open + close + 1..];
        }
    }
    let who = match &raw.who {
        None => {
            let mut w = vec![Allowed::Operators];
            if let Some(t) = &team {
                w.push(Allowed::Team(t.clone()));
            }
            w
        }
        Some(list) => {
            let mut w = Vec::new();
            for (i, item) in list.iter().enumerate() {
                match Allowed::parse(item, org) {
                    Ok(a) => w.push(a),
                    Err(e) => v.error(format!("who[{i}]"), item.span(), e),
                }
            }
            w
        }
    };
    let backend_at = raw.backend.as_ref().and_then(|b| b.span());
    let jenkins_job_at = raw.jenkins_job.as_ref().and_then(|j| j.span());
    let mut forge_failed = false;
    let backend = match (
        raw.backend.as_ref().map_or("local", |b| b.as_str()),
        &raw.jenkins_job,
    ) {
        ("local", None) => Backend::Local,
        ("jenkins", Some(j)) if !j.trim().is_empty() => {
            Backend::Jenkins(j.trim().trim_matches('/').to_string())
        }
        ("jenkins", _) => {
            v.error(
                "jenkins_job",
                jenkins_job_at,
                "a Jenkins job needs `jenkins_job`, its full name such as \"web/build\"".into(),
            );
            Backend::Local
        }
        ("local", Some(_)) => {
            v.error(
                "jenkins_job",
                jenkins_job_at,
                "`jenkins_job` needs backend = \"jenkins\"".into(),
            );
            Backend::Local
        }
        (kind @ ("github_actions" | "gitlab_ci"), None) => {
            match forge_job(&mut v, &raw, kind, repos) {
                Some(f) if kind == "github_actions" => Backend::GithubActions(f),
                Some(f) => Backend::GitlabCi(f),
                None => {
                    forge_failed = true;
                    Backend::Local
                }
            }
        }
        ("github_actions" | "gitlab_ci", Some(_)) => {
            v.error(
                "jenkins_job",
                jenkins_job_at,
                "`jenkins_job` needs backend = \"jenkins\"".into(),
            );
            forge_failed = true;
            Backend::Local
        }
        (other, _) => {
            v.error(
                "backend",
                backend_at,
                format!(
                    "`backend` must be local, jenkins, github_actions or gitlab_ci; got `{other}`"
                ),
            );
            Backend::Local
        }
    };
    if backend.forge().is_none() && !forge_failed {
        let forge_keys = [
            ("repo", raw.repo.as_ref()),
            ("workflow", raw.workflow.as_ref()),
            ("ref", raw.git_ref.as_ref()),
            ("id_input", raw.id_input.as_ref()),
            ("trigger_token_env", raw.trigger_token_env.as_ref()),
            ("poll", raw.poll.as_ref()),
        ];
        for (k, w) in forge_keys {
            if let Some(w) = w {
                v.error(
                    k,
                    w.span(),
                    format!("`{k}` needs backend = \"github_actions\" or \"gitlab_ci\""),
                );
            }
        }
        if let Some((k, _)) = raw.inputs.iter().next() {
            v.error(
                "inputs",
                k.span(),
                "`inputs` needs backend = \"github_actions\" or \"gitlab_ci\"".into(),
            );
        }
    }
    let placeholders = |v: &mut Validator, key: String, w: &Written<String>| {
        let mut rest = w.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let pname = &rest[open + 1..open + close];
            if !raw.params.contains_key(pname) {
                v.error(
                    key.clone(),
                    w.span(),
                    format!("`{{{pname}}}` names no parameter; declare [params.{pname}]"),
                );
            }
            rest = &rest[open + close + 1..];
        }
    };
    if let Some(r) = &raw.git_ref {
        placeholders(&mut v, "ref".into(), r);
    }
    for (k, val) in &raw.inputs {
        placeholders(&mut v, format!("inputs.{k}"), val);
    }
    let raw_program = raw
        .program
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_default();
    if backend == Backend::Local && raw_program.is_empty() && !forge_failed {
        v.error(
            "",
            None,
            "a local job needs `program`, such as program = \"scripts/build.sh\"".into(),
        );
    }
    let program = if raw_program.contains('/') {
        dir.join(&raw_program)
    } else {
        PathBuf::from(&raw_program)
    };
    if raw_program.contains('/') && !program.exists() {
        v.error(
            "program",
            raw.program.as_ref().and_then(|p| p.span()),
            format!("{} does not exist", program.display()),
        );
    }
    let env = job_env(&mut v, raw.env.as_ref(), secret_vars);
    let workdir = raw
        .workdir
        .as_ref()
        .map_or(dir.to_path_buf(), |w| dir.join(w));
    let errors: Vec<Problem> = v.into_problems();
    if errors.iter().any(|p| p.severity == Severity::Error) {
        return Err(errors);
    }
    let git_ref_default = if raw.params.contains_key("ref") {
        "{ref}".to_string()
    } else {
        raw.main_ref.clone()
    };
    let backend = match backend {
        Backend::GithubActions(mut f) | Backend::GitlabCi(mut f) if f.git_ref.is_empty() => {
            f.git_ref = git_ref_default;
            if raw
                .backend
                .as_ref()
                .is_some_and(|b| b.as_str() == "github_actions")
            {
                Backend::GithubActions(f)
            } else {
                Backend::GitlabCi(f)
            }
        }
        b => b,
    };
    Ok((
        Job {
            name,
            description: raw.description,
            team,
            backend,
            program,
            args: raw.args.into_iter().map(Written::into_inner).collect(),
            timeout,
            workdir,
            who,
            main_ref: raw.main_ref,
            params,
            env,
            file: file.to_path_buf(),
        },
        errors,
    ))
}

/// A forge CI job's keys: the repository (in bot.toml, on the right
/// forge), the workflow (GitHub), the trigger token (GitLab; unset is a
/// warning), the inputs, the poll.
fn forge_job(
    v: &mut Validator,
    raw: &RawJob,
    kind: &str,
    repos: &[(String, String)],
) -> Option<crate::domain::job::ForgeJob> {
    let github = kind == "github_actions";
    let want = if github { "github" } else { "gitlab" };
    let mut ok = true;
    let repo = match &raw.repo {
        None => {
            v.error(
                "",
                None,
                format!("a {kind} job needs `repo`, a [repos.NAME] of bot.toml with provider = \"{want}\""),
            );
            ok = false;
            String::new()
        }
        Some(r) => match repos.iter().find(|(n, _)| n == r.as_str()) {
            None => {
                let known: Vec<&str> = repos
                    .iter()
                    .filter(|(_, p)| p.trim() == want)
                    .map(|(n, _)| n.as_str())
                    .collect();
                v.error(
                    "repo",
                    r.span(),
                    format!(
                        "bot.toml has no [repos.{}]; {want} repositories are: {}",
                        crate::domain::rich::clip_plain(r, 40),
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
                ok = false;
                String::new()
            }
            Some((n, p)) if p.trim() != want => {
                v.error(
                    "repo",
                    r.span(),
                    format!(
                        "[repos.{n}] is on {}, and {kind} needs provider = \"{want}\"",
                        p.trim()
                    ),
                );
                ok = false;
                String::new()
            }
            Some((n, _)) => n.clone(),
        },
    };
    let workflow = match (&raw.workflow, github) {
        (Some(w), true) => {
            let name = w.trim();
            let file = name.rsplit('/').next().unwrap_or(name);
            let shaped = (file.ends_with(".yml") || file.ends_with(".yaml"))
                && file
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !shaped {
                v.error(
                    "workflow",
                    w.span(),
                    format!(
                        "`{}` is not a workflow file's name, such as \"ci.yml\" (in .github/workflows/)",
                        crate::domain::rich::clip_plain(w, 60)
                    ),
                );
                ok = false;
            }
            file.to_string()
        }
        (None, true) => {
            v.error(
                "",
                None,
                "a github_actions job needs `workflow`, the workflow's file such as \"ci.yml\""
                    .into(),
            );
            ok = false;
            String::new()
        }
        (Some(w), false) => {
            v.error(
                "workflow",
                w.span(),
                "`workflow` is for github_actions; a GitLab pipeline runs the project's .gitlab-ci.yml".into(),
            );
            ok = false;
            String::new()
        }
        (None, false) => String::new(),
    };
    if let (Some(i), false) = (&raw.id_input, github) {
        v.error(
            "id_input",
            i.span(),
            "`id_input` is for github_actions; GitLab's trigger answers with the pipeline it started".into(),
        );
        ok = false;
    }
    let trigger_token_env = match (&raw.trigger_token_env, github) {
        (Some(t), true) => {
            v.error(
                "trigger_token_env",
                t.span(),
                "`trigger_token_env` is for gitlab_ci; GitHub Actions uses the repository's token_env".into(),
            );
            ok = false;
            None
        }
        (Some(t), false) => {
            if std::env::var_os(t.trim()).is_none_or(|x| x.is_empty()) {
                v.warn(
                    "trigger_token_env",
                    t.span(),
                    format!("{} is not set: the pipeline cannot be triggered", t.trim()),
                );
            }
            Some(t.trim().to_string())
        }
        (None, true) => None,
        (None, false) => {
            v.error(
                "",
                None,
                "a gitlab_ci job needs `trigger_token_env`, the env var of a pipeline trigger token (Settings → CI/CD → Pipeline trigger tokens)".into(),
            );
            ok = false;
            None
        }
    };
    let poll = match &raw.poll {
        None => Duration::from_secs(10),
        Some(p) => match humantime::parse_duration(p.trim()) {
            Ok(d) if d >= Duration::from_millis(10) && d <= Duration::from_secs(3600) => d,
            _ => {
                v.error(
                    "poll",
                    p.span(),
                    format!(
                        "`{}` is not a duration from 10ms to 1h, such as \"10s\"",
                        crate::domain::rich::clip_plain(p, 40)
                    ),
                );
                ok = false;
                Duration::from_secs(10)
            }
        },
    };
    ok.then(|| crate::domain::job::ForgeJob {
        repo,
        workflow,
        git_ref: raw
            .git_ref
            .as_ref()
            .map(|r| r.trim().to_string())
            .unwrap_or_default(),
        inputs: raw
            .inputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        id_input: raw.id_input.as_ref().map(|i| i.trim().to_string()),
        trigger_token_env,
        poll,
    })
}

/// A job's environment from its `env`: the safe set, then what the file
/// passes through, leaves out or sets. Refuses a name that is not an env
/// var name, one the bot sets itself, and any secret the config names.
fn job_env(v: &mut Validator, raw: Option<&Written<RawEnv>>, secret_vars: &[String]) -> JobEnv {
    use toml::Value as V;
    let mut env = JobEnv {
        pass: SAFE_ENV.iter().map(|s| s.to_string()).collect(),
        set: BTreeMap::new(),
    };
    // Each entry: its name, what it asks, its key and its place.
    let mut entries: Vec<(String, EnvEntry<'_>, String, Option<std::ops::Range<usize>>)> =
        Vec::new();
    match raw.map(|r| (&**r, r.span())) {
        None => {}
        Some((RawEnv::List(list), _)) => {
            for (i, item) in list.iter().enumerate() {
                match &**item {
                    V::String(n) => {
                        entries.push((n.clone(), EnvEntry::Pass, format!("env[{i}]"), item.span()))
                    }
                    _ => v.error(
                        format!("env[{i}]"),
                        item.span(),
                        "each entry must be a variable's name in quotes, such as \"JAVA_HOME\"".into(),
                    ),
                }
            }
        }
        Some((RawEnv::Table(t), _)) => {
            for (n, val) in t {
                let entry = match &**val {
                    V::Boolean(true) => EnvEntry::Pass,
                    V::Boolean(false) => EnvEntry::Leave,
                    V::String(s) => EnvEntry::Set(s),
                    _ => {
                        v.error(
                            format!("env.{n}"),
                            n.span(),
                            "must be true (passed through from the bot), false (left out) or a string (its value)".into(),
                        );
                        continue;
                    }
                };
                entries.push((n.to_string(), entry, format!("env.{n}"), n.span()));
            }
        }
        Some((RawEnv::Other, at)) => v.error(
            "env",
            at,
            "`env` must be a list of names to pass through, such as env = [\"JAVA_HOME\"], or a table [env] of NAME = true, false or \"value\"".into(),
        ),
    }
    for (name, val, key, at) in entries {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            v.error(
                key,
                at,
                format!(
                    "`{}` is not an environment variable name: use letters, digits and `_`, not starting with a digit",
                    crate::domain::rich::one_line(&name, 60)
                ),
            );
            continue;
        }
        if name == "OPSBOT_RUN" || name.starts_with("OPSBOT_PARAM_") {
            v.error(
                key,
                at,
                format!("`{name}` is set by the bot itself (the run id and the job's parameters)"),
            );
            continue;
        }
        if matches!(val, EnvEntry::Pass) && secret_vars.iter().any(|s| s == &name) {
            v.error(
                key,
                at,
                format!(
                    "`{name}` holds one of the bot's secrets (the config names it); a job never gets the bot's secrets: give the job its own credential under another name"
                ),
            );
            continue;
        }
        env.pass.retain(|p| p != &name);
        env.set.remove(&name);
        match val {
            EnvEntry::Pass => env.pass.push(name),
            EnvEntry::Leave => {}
            EnvEntry::Set(value) => {
                env.set.insert(name, value.to_string());
            }
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(src: &str) -> RawEnv {
        let job: RawJob = toml::from_str(&format!("description = \"x\"\n{src}")).unwrap();
        job.env.unwrap().into_inner()
    }

    const BOT: &str = r#"
[roles]
operators = ["olivia"]
[teams.backend]
channel = "backend"
members = ["bob"]
[repos.web]
url = "https://github.com/acme/web.git"
provider = "github"
team = "backend"
token_env = "OPSBOT_TEST_UNSET_TOKEN"
[repos.shop]
url = "https://gitlab.example.com/acme/shop.git"
provider = "gitlab"
team = "backend"
"#;

    fn load(files: &[(&str, &str)]) -> Result<crate::config::Loaded, crate::config::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("commands")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join("commands").join(name), text).unwrap();
        }
        let file = dir.path().join("bot.toml");
        crate::config::Config::parse(&file, BOT)
    }

    #[test]
    fn forge_ci_jobs_load_with_their_defaults_and_warnings() {
        let l = load(&[
            (
                "web-ci.toml",
                "description = \"d\"\nbackend = \"github_actions\"\nrepo = \"web\"\nworkflow = \"ci.yml\"\nid_input = \"opsbot_run\"\n[inputs]\ncommit = \"{sha}\"\n[params.ref]\ndescription = \"r\"\npattern = \"[a-z]+\"\n[params.sha]\ndescription = \"s\"\npattern = \"[0-9a-f]+\"\n",
            ),
            (
                "shop-ci.toml",
                "description = \"d\"\nbackend = \"gitlab_ci\"\nrepo = \"shop\"\ntrigger_token_env = \"OPSBOT_TEST_UNSET_TRIGGER\"\npoll = \"2s\"\n",
            ),
        ])
        .unwrap();
        let Backend::GithubActions(f) = &l.config.jobs["web-ci"].backend else {
            panic!("{:?}", l.config.jobs["web-ci"].backend)
        };
        assert_eq!(
            (f.repo.as_str(), f.workflow.as_str(), f.git_ref.as_str()),
            ("web", "ci.yml", "{ref}")
        );
        assert_eq!(f.inputs["commit"], "{sha}");
        assert_eq!(f.poll, Duration::from_secs(10));
        let Backend::GitlabCi(g) = &l.config.jobs["shop-ci"].backend else {
            panic!("gitlab")
        };
        assert_eq!(
            (g.git_ref.as_str(), g.poll),
            ("main", Duration::from_secs(2))
        );
        let warned: Vec<(String, &str)> = l
            .warnings
            .iter()
            .filter(|p| p.file.to_string_lossy().contains("commands"))
            .map(|p| {
                (
                    p.file.file_name().unwrap().to_string_lossy().to_string(),
                    p.key.as_str(),
                )
            })
            .collect();
        assert!(
            warned.contains(&("shop-ci.toml".into(), "trigger_token_env")),
            "{warned:?}"
        );
        assert!(
            warned.contains(&("web-ci.toml".into(), "repo")),
            "{warned:?}"
        );
        assert!(
            warned.contains(&("shop-ci.toml".into(), "repo")),
            "{warned:?}"
        );
    }

    #[test]
    fn every_mistake_in_a_forge_ci_job_is_named_with_its_place() {
        let err = load(&[
            (
                "a.toml",
                "description = \"d\"\nbackend = \"github_actions\"\nrepo = \"nope\"\nworkflow = \"ci.txt\"\n[inputs]\nx = \"{missing}\"\n",
            ),
            (
                "b.toml",
                "description = \"d\"\nbackend = \"gitlab_ci\"\nrepo = \"web\"\nworkflow = \"ci.yml\"\nid_input = \"x\"\npoll = \"0s\"\n",
            ),
            ("c.toml", "description = \"d\"\nbackend = \"github_actions\"\n"),
            ("d.toml", "description = \"d\"\nprogram = \"/bin/true\"\nrepo = \"web\"\n"),
            ("e.toml", "description = \"d\"\nbackend = \"circleci\"\n"),
        ])
        .unwrap_err();
        let got: Vec<(String, Option<usize>, &str)> = err
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| {
                (
                    p.file.file_name().unwrap().to_string_lossy().to_string(),
                    p.line,
                    p.key.as_str(),
                )
            })
            .collect();
        let want: Vec<(String, Option<usize>, &str)> = vec![
            ("a.toml".into(), Some(3), "repo"),
            ("a.toml".into(), Some(4), "workflow"),
            ("a.toml".into(), Some(6), "inputs.x"),
            ("b.toml".into(), Some(3), "repo"),
            ("b.toml".into(), Some(4), "workflow"),
            ("b.toml".into(), Some(5), "id_input"),
            ("b.toml".into(), None, ""),
            ("b.toml".into(), Some(6), "poll"),
            ("c.toml".into(), None, ""),
            ("c.toml".into(), None, ""),
            ("d.toml".into(), Some(3), "repo"),
            ("e.toml".into(), Some(2), "backend"),
            ("e.toml".into(), None, ""),
        ];
        assert_eq!(got, want, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("bot.toml has no [repos.nope]; github repositories are: web"),
            "{text}"
        );
        assert!(
            text.contains("[repos.web] is on github, and gitlab_ci needs provider = \"gitlab\""),
            "{text}"
        );
        assert!(
            text.contains("must be local, jenkins, github_actions or gitlab_ci; got `circleci`"),
            "{text}"
        );
    }

    #[test]
    fn env_is_read_as_a_list_a_table_or_something_else_with_its_places() {
        let RawEnv::List(list) = env_of("env = [\"A\", 5]") else {
            panic!("a list")
        };
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|e| e.span().is_some()));
        let RawEnv::Table(t) = env_of("[env]\nA = true\nB = \"b\"") else {
            panic!("a table")
        };
        assert!(t.keys().all(|k| k.span().is_some()) && t.contains_key("B"));
        for other in ["env = 5", "env = \"A\"", "env = true", "env = 1979-05-27"] {
            assert!(matches!(env_of(other), RawEnv::Other), "{other}");
        }
    }
}
