//! `sluice` command line: argument parsing and wiring only.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::ParamValues;
use futures::StreamExt;
use sluice::engine::{Engine, Output};
use sluice::{project, server};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A SQL-first lakehouse over Delta Lake, spoken to over the PostgreSQL protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user or replace its password and role. The password comes from
    /// SLUICE_PASSWORD or one line on standard input; only a SCRAM verifier
    /// is written.
    Add {
        name: String,
        /// reader, writer or admin.
        #[arg(long, default_value = "reader")]
        role: String,
        /// Grant the server_files privilege: COPY ... FROM 'path', read_csv,
        /// read_json, read_log, postgres_query ... (an admin has it anyway).
        #[arg(long)]
        server_files: bool,
        #[arg(long, env = "SLUICE_USERS", default_value = "users.toml")]
        users: std::path::PathBuf,
    },
}

/// What every project command takes.
#[derive(clap::Args, Clone)]
struct ProjectArgs {
    /// Lake location: a path, file://, s3://bucket/prefix or memory://.
    #[arg(long, env = "SLUICE_LAKE", default_value = "./lake")]
    lake: String,
    /// Config file with storage options per lake ([lake."s3://…"] sections).
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// The project folder (sluice_project.yml or dbt_project.yml).
    #[arg(long, default_value = ".")]
    project: std::path::PathBuf,
    /// Nodes to run: names, +m, m+, @m, path:, tag:, config.<key>: (space-separated: union; comma: intersection).
    #[arg(long, short = 's', num_args = 1..)]
    select: Vec<String>,
    /// Nodes to leave out (same syntax as --select).
    #[arg(long, num_args = 1..)]
    exclude: Vec<String>,
    /// Rebuild incremental models and materialized views from scratch.
    #[arg(long)]
    full_refresh: bool,
    /// Variables as YAML (`{key: value}`), over the project file's `vars`.
    #[arg(long)]
    vars: Option<String>,
    /// Nodes run at once.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Schema models go to (default: the project file's `schema`, else public).
    #[arg(long)]
    schema: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the lake over the PostgreSQL wire protocol.
    Serve {
        /// Lake location: a path, file://, s3://bucket/prefix or memory://.
        #[arg(long, env = "SLUICE_LAKE", default_value = "./lake")]
        lake: String,
        /// Address to listen on.
        #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:5433")]
        listen: String,
        /// Config file with storage options per lake ([lake."s3://…"] sections).
        #[arg(long, env = "SLUICE_CONFIG")]
        config: Option<std::path::PathBuf>,
        /// Users file (written by `sluice user add`): SCRAM-SHA-256 logins
        /// with roles; needed to listen beyond loopback.
        #[arg(long, env = "SLUICE_USERS")]
        users: Option<std::path::PathBuf>,
        /// TLS certificate chain (PEM); with --tls-key, clients may use sslmode=require.
        #[arg(long, env = "SLUICE_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// TLS private key (PEM).
        #[arg(long, env = "SLUICE_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
        /// A model project to build (`sluice build`) before listening.
        #[arg(long, env = "SLUICE_PROJECT")]
        project: Option<std::path::PathBuf>,
        /// Serve Prometheus metrics at http://HOST:PORT/metrics.
        #[arg(long, env = "SLUICE_METRICS")]
        metrics: Option<String>,
    },
    /// Build the models of a project (view, table, incremental, ephemeral, materialized_view).
    Run(ProjectArgs),
    /// Run the tests of a project (schema.yml generic tests and tests/*.sql).
    Test(ProjectArgs),
    /// Load a project's seeds (seeds/*.csv) into tables.
    Seed(ProjectArgs),
    /// Take a project's snapshots (SCD type 2 history).
    Snapshot(ProjectArgs),
    /// Seeds, models, snapshots and tests of a project in dependency order.
    Build(ProjectArgs),
    /// Manage the users file.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Run SQL against the lake in this process and print the results.
    Sql {
        #[arg(long, env = "SLUICE_LAKE", default_value = "./lake")]
        lake: String,
        /// Config file with storage options per lake ([lake."s3://…"] sections).
        #[arg(long, env = "SLUICE_CONFIG")]
        config: Option<std::path::PathBuf>,
        /// Run the statements in FILE (as `psql -f`).
        #[arg(short, long, conflicts_with = "sql")]
        file: Option<std::path::PathBuf>,
        /// One or more statements separated by semicolons.
        #[arg(required_unless_present = "file")]
        sql: Option<String>,
    },
}

/// Stack of each runtime worker thread.
const WORKER_STACK: usize = 16 * 1024 * 1024;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(
                    // The kernel logs each failed read with a backtrace;
                    // the statement reports it to its client already.
                    "warn,deltalake_core::operations::merge=error,deltalake_core::kernel::transaction=off,buoyant_kernel=off",
                )
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    server::limit_allocator_arenas();
    // Planning and optimizing a deep query recurses once per plan node;
    // tokio's default 2 MiB worker stack is too small for nested MERGE
    // checks and large generated statements.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve {
                lake,
                listen,
                config,
                users,
                tls_cert,
                tls_key,
                project,
                metrics,
            } => {
                if let Some(addr) = metrics {
                    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
                        sluice::Error::new(
                            sluice::error::ErrorKind::InvalidParameter,
                            format!("cannot serve metrics at {addr}: {e}"),
                        )
                    })?;
                    eprintln!("metrics at http://{}/metrics", listener.local_addr()?);
                    tokio::spawn(sluice::metrics::serve(listener));
                }
                let users = match users {
                    Some(path) => Some(std::sync::Arc::new(server::auth::Users::load(&path)?)),
                    None => None,
                };
                let tls = match (tls_cert, tls_key) {
                    (Some(c), Some(k)) => Some(server::tls_acceptor(&c, &k)?),
                    _ => None,
                };
                let (engine, scheduler) =
                    open_engine(&lake, config.as_deref()).await.map_err(|e| {
                        let message = format!("cannot open the lake at {lake}: {}", e.message);
                        sluice::Error { message, ..e }
                    })?;
                if let Some(dir) = project {
                    eprintln!("building project {} before serving", dir.display());
                    let args = ProjectArgs {
                        lake: lake.clone(),
                        config: None,
                        project: dir,
                        select: vec![],
                        exclude: vec![],
                        full_refresh: false,
                        vars: None,
                        threads: 4,
                        schema: None,
                    };
                    // A failed node is reported; the lake is served anyway.
                    match run_project(&engine, &args, project::Command::Build).await {
                        Ok((_, loaded)) => {
                            // Its scheduled models run by themselves from now on.
                            let n = scheduler.schedule_models(loaded)?;
                            if n > 0 {
                                eprintln!("{n} project node(s) run on a schedule");
                            }
                        }
                        Err(e) => eprintln!("ERROR:  {e}"),
                    }
                }
                server::serve(engine, &listen, users, tls, shutdown_signal()).await
            }
            Command::User {
                command:
                    UserCommand::Add {
                        name,
                        role,
                        server_files,
                        users,
                    },
            } => add_user(&name, &role, server_files, &users),
            Command::Run(a) => project_command(a, project::Command::Run).await,
            Command::Test(a) => project_command(a, project::Command::Test).await,
            Command::Seed(a) => project_command(a, project::Command::Seed).await,
            Command::Snapshot(a) => project_command(a, project::Command::Snapshot).await,
            Command::Build(a) => project_command(a, project::Command::Build).await,
            Command::Sql {
                lake,
                config,
                file,
                sql,
            } => {
                let sql = match (file, sql) {
                    (Some(path), _) => std::fs::read_to_string(&path).map_err(|e| {
                        sluice::Error::new(
                            sluice::ErrorKind::Io,
                            format!("could not read file \"{}\": {e}", path.display()),
                        )
                    })?,
                    (None, sql) => sql.unwrap_or_default(),
                };
                run_sql(&lake, config.as_deref(), &sql).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ERROR:  {e}");
            ExitCode::FAILURE
        }
    }
}

async fn project_command(args: ProjectArgs, command: project::Command) -> sluice::Result<()> {
    let (engine, _) = open_engine(&args.lake, args.config.as_deref()).await?;
    let (summary, _) = run_project(&engine, &args, command).await?;
    if summary.failed() {
        return Err(sluice::Error::new(
            sluice::ErrorKind::InvalidParameter,
            format!("{} failed: see the failures above", command.name()),
        ));
    }
    Ok(())
}

/// Load the project, run `command`, print the failures and the totals.
async fn run_project(
    engine: &std::sync::Arc<Engine>,
    args: &ProjectArgs,
    command: project::Command,
) -> sluice::Result<(project::Summary, std::sync::Arc<project::Project>)> {
    let vars = match &args.vars {
        Some(text) => match project::parse_yaml(text, std::path::Path::new("--vars"))? {
            serde_json::Value::Object(m) => m.into_iter().collect(),
            serde_json::Value::Null => Default::default(),
            _ => {
                return Err(sluice::Error::new(
                    sluice::ErrorKind::InvalidParameter,
                    "--vars must be a YAML mapping, e.g. '{days: 7}'",
                ));
            }
        },
        None => Default::default(),
    };
    let loaded = project::Project::load(
        &args.project,
        &project::LoadOptions {
            schema: args.schema.clone(),
            vars,
        },
    )?;
    let options = project::Options {
        select: args.select.clone(),
        exclude: args.exclude.clone(),
        full_refresh: args.full_refresh,
        threads: args.threads,
        progress: true,
    };
    let loaded = std::sync::Arc::new(loaded);
    let summary = project::run(engine, loaded.clone(), command, &options).await?;
    let bad: Vec<_> = summary
        .results
        .iter()
        .filter(|r| !r.message.is_empty() && r.status != project::Status::Success)
        .filter(|r| r.status != project::Status::Skipped)
        .collect();
    if !bad.is_empty() {
        eprintln!();
        for r in bad {
            eprintln!(
                "{} in {} {} ({})",
                r.status.name().to_uppercase(),
                r.kind.label(),
                r.name,
                r.path
            );
            eprintln!("  {}", r.message.replace('\n', "\n  "));
        }
    }
    use project::Status as S;
    eprintln!(
        "\nDone in {:.2}s. PASS={} WARN={} ERROR={} SKIP={} TOTAL={}",
        summary.seconds,
        summary.count(S::Success) + summary.count(S::Pass),
        summary.count(S::Warn),
        summary.count(S::Error) + summary.count(S::Fail),
        summary.count(S::Skipped),
        summary.results.len()
    );
    Ok((summary, loaded))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term_fut = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term_fut => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn add_user(
    name: &str,
    role: &str,
    server_files: bool,
    path: &std::path::Path,
) -> sluice::Result<()> {
    let role = server::auth::Role::parse(role)?;
    let password = match std::env::var("SLUICE_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprint!("password for {name}: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        return Err(sluice::Error::new(
            sluice::ErrorKind::InvalidParameter,
            "empty password",
        ));
    }
    server::auth::Users::add(path, name, role, server_files, &password)?;
    println!(
        "user {name} ({}{}) written to {}",
        role.name(),
        if server_files { ", server_files" } else { "" },
        path.display()
    );
    Ok(())
}

async fn open_engine(
    lake: &str,
    config: Option<&std::path::Path>,
) -> sluice::Result<(
    std::sync::Arc<Engine>,
    std::sync::Arc<sluice::scheduler::Scheduler>,
)> {
    let config = match config {
        Some(path) => sluice::config::Config::load(path)?,
        None => Default::default(),
    };
    let engine = Engine::open_configured(lake, &config).await?;
    // `sluice.refresh(...)` works in every command; schedules run only
    // in `serve`.
    let scheduler = sluice::scheduler::Scheduler::install(&engine)?;
    Ok((engine, scheduler))
}

async fn run_sql(lake: &str, config: Option<&std::path::Path>, sql: &str) -> sluice::Result<()> {
    let (engine, _) = open_engine(lake, config).await?;
    let mut session = engine.session();
    for stmt in session.parse(sql)? {
        let output = session.execute(stmt, &ParamValues::List(vec![])).await;
        for n in session.take_notices() {
            eprintln!("NOTICE:  {n}");
        }
        match output? {
            Output::Rows {
                schema, mut stream, ..
            } => {
                let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
                let mut rows: Vec<Vec<String>> = Vec::new();
                let opts = FormatOptions::default().with_null("");
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    let fmts = batch
                        .columns()
                        .iter()
                        .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
                        .collect::<Result<Vec<_>, _>>()?;
                    for r in 0..batch.num_rows() {
                        rows.push(fmts.iter().map(|f| f.value(r).to_string()).collect());
                    }
                }
                print_table(&names, &rows);
            }
            Output::Command { tag, rows } => match (tag.as_str(), rows) {
                ("INSERT", Some(n)) => println!("INSERT 0 {n}"),
                (t, Some(n)) => println!("{t} {n}"),
                (t, None) => println!("{t}"),
            },
            Output::TransactionStart => println!("BEGIN"),
            Output::TransactionEnd(t) => println!("{t}"),
            Output::CopyIn(mut copy) => {
                use std::io::Read;
                let mut stdin = std::io::stdin().lock();
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = tokio::task::block_in_place(|| stdin.read(&mut buf))?;
                    if n == 0 {
                        break;
                    }
                    copy.feed(&buf[..n]).await?;
                }
                let (rows, skipped) = copy.finish().await?;
                if skipped > 0 {
                    eprintln!(
                        "NOTICE:  {skipped} rows were skipped due to data type incompatibility"
                    );
                }
                println!("COPY {rows}");
            }
            Output::CopyOut(copy) => {
                use std::io::Write;
                let options = std::sync::Arc::new(Default::default());
                let (_, _, rows) = server::copy::copy_out_stream(copy, options)
                    .map_err(|e| sluice::Error::internal(e.to_string()))?;
                let mut rows = std::pin::pin!(rows);
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                while let Some(r) = rows.next().await {
                    let chunk = r.map_err(|e| sluice::Error::internal(e.to_string()))?;
                    out.write_all(&chunk.data)?;
                }
                out.flush()?;
            }
        }
    }
    Ok(())
}

/// Print rows the way psql's aligned format does.
fn print_table(names: &[String], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
    for r in rows {
        for (i, v) in r.iter().enumerate() {
            widths[i] = widths[i].max(v.chars().count());
        }
    }
    let line = |cells: &[String], center: bool| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths[i];
                if center {
                    let pad = w - c.chars().count();
                    format!(
                        " {}{}{} ",
                        " ".repeat(pad / 2),
                        c,
                        " ".repeat(pad - pad / 2)
                    )
                } else {
                    format!(" {}{} ", c, " ".repeat(w - c.chars().count()))
                }
            })
            .collect::<Vec<_>>()
            .join("|")
    };
    println!("{}", line(names, true).trim_end());
    println!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    for r in rows {
        println!("{}", line(r, false).trim_end());
    }
    println!(
        "({} row{})",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
}
