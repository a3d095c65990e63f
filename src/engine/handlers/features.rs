//! CREATE FEATURE VIEW, CREATE FEATURE SERVICE, DROP FEATURE VIEW | SERVICE.
//! (REFRESH FEATURE VIEW is the materialized view's refresh.)

use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::{self as sql, CreateTableOptions, ObjectName, ObjectType};

use super::Handler;
use crate::catalog::{FeatureDef, FeatureServiceDef, Kind, Object, RelName, ServiceView};
use crate::engine::access::Role;
use crate::engine::{Output, Session, ddl, matview};
use crate::error::{Error, ErrorKind, Result, ResultFuture};
use crate::frontend::features::{FeatureObject, FeatureServiceStmt, FeatureViewStmt};

pub struct CreateView(pub Box<FeatureViewStmt>);

impl Handler for CreateView {
    fn name(&self) -> String {
        "CREATE FEATURE VIEW".into()
    }

    fn role(&self) -> Role {
        Role::Admin
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            let mut v = *self.0;
            let expectations = std::mem::take(&mut v.expectations);
            let ttl_micros = v.ttl.as_deref().map(ttl_micros).transpose()?;
            let feature = FeatureDef {
                entity: v.entity,
                timestamp: v.timestamp,
                created_at: v.created_at,
                ttl_micros,
                ttl: v.ttl,
                online: v.online,
            };
            let cv = sql::CreateView {
                or_alter: false,
                or_replace: false,
                materialized: true,
                secure: false,
                name: v.name,
                name_before_not_exists: false,
                columns: vec![],
                query: v.query,
                options: CreateTableOptions::None,
                cluster_by: vec![],
                comment: None,
                with_no_schema_binding: false,
                if_not_exists: v.if_not_exists,
                temporary: false,
                copy_grants: false,
                to: None,
                params: None,
            };
            matview::create(session, cv, vec![], expectations, Some(feature), v.refresh).await
        })
    }
}

/// A TTL as written (`7 days`, `36 hours`, `1 day 12 hours`) in
/// microseconds. Months and years have no fixed length: refused.
pub fn ttl_micros(text: &str) -> Result<i64> {
    use datafusion::arrow::compute::kernels::cast_utils::parse_interval_month_day_nano;
    let bad = || {
        Error::new(
            ErrorKind::InvalidParameter,
            format!("invalid TTL \"{text}\": write it in weeks, days, hours, minutes or seconds"),
        )
    };
    let i = parse_interval_month_day_nano(text).map_err(|_| bad())?;
    if i.months != 0 {
        return Err(bad());
    }
    let micros = i.days as i64 * 86_400_000_000 + i.nanoseconds / 1_000;
    if micros <= 0 {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            format!("TTL \"{text}\" must be positive"),
        ));
    }
    Ok(micros)
}

pub struct CreateService(pub Box<FeatureServiceStmt>);

impl Handler for CreateService {
    fn name(&self) -> String {
        "CREATE FEATURE SERVICE".into()
    }

    fn role(&self) -> Role {
        Role::Admin
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            const TAG: &str = "CREATE FEATURE SERVICE";
            let s = *self.0;
            let (schema, name) = session.qualify(&s.name)?;
            let views = service_views(session, s.views)?;
            let snapshot = session.engine.catalog().snapshot();
            let entry = Object::feature_service(&schema, &name, FeatureServiceDef { views });
            let exists = snapshot
                .of_kind(Kind::FeatureService)
                .any(|o| o.schema == schema && o.name == name);
            if exists && s.if_not_exists {
                session.notice(format!(
                    "feature service \"{name}\" already exists, skipping"
                ));
                return Ok(Output::command(TAG));
            }
            session
                .engine
                .catalog()
                .mutate(move |entries| {
                    if entries.iter().any(|e| {
                        e.kind() == Kind::FeatureService
                            && e.schema == entry.schema
                            && e.name == entry.name
                    }) {
                        return Err(Error::new(
                            ErrorKind::DuplicateObject,
                            format!("feature service \"{}\" already exists", entry.name),
                        ));
                    }
                    entries.push(entry.clone());
                    Ok(())
                })
                .await?;
            Ok(Output::command(TAG))
        })
    }
}

/// Each named feature view with its features (all when none are named).
fn service_views(
    session: &Session,
    named: Vec<(ObjectName, Vec<String>)>,
) -> Result<Vec<ServiceView>> {
    let snapshot = session.engine.catalog().snapshot();
    let system = session.system_tables();
    let resolver = session.resolver(&snapshot, &system);
    let mut views = Vec::new();
    for (view, features) in named {
        let o = resolver.object(&view, Kind::MaterializedView)?;
        let (Some(f), Some(stored)) = (o.feature(), o.stored()) else {
            return Err(not_a_feature_view(&o.name));
        };
        let available: Vec<&str> = f
            .features(&stored.columns)
            .map(|c| c.name.as_str())
            .collect();
        for x in &features {
            if !available.contains(&x.as_str()) {
                return Err(Error::new(
                    ErrorKind::UndefinedColumn,
                    format!(
                        "feature \"{x}\" is not a feature of feature view \"{}\"",
                        o.name
                    ),
                ));
            }
        }
        if views.iter().any(|v: &ServiceView| v.view == o.rel_name()) {
            return Err(Error::new(
                ErrorKind::DuplicateObject,
                format!("feature view \"{}\" is named twice", o.name),
            ));
        }
        let features = if features.is_empty() {
            available.iter().map(|s| s.to_string()).collect()
        } else {
            features
        };
        views.push(ServiceView {
            view: o.rel_name(),
            features,
        });
    }
    Ok(views)
}

fn not_a_feature_view(name: &str) -> Error {
    Error::new(
        ErrorKind::WrongObjectType,
        format!("\"{name}\" is not a feature view"),
    )
}

pub struct Drop {
    pub what: FeatureObject,
    pub names: Vec<ObjectName>,
    pub if_exists: bool,
    pub cascade: bool,
}

impl Handler for Drop {
    fn name(&self) -> String {
        match self.what {
            FeatureObject::View => "DROP FEATURE VIEW".into(),
            FeatureObject::Service => "DROP FEATURE SERVICE".into(),
        }
    }

    fn role(&self) -> Role {
        Role::Admin
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            match self.what {
                FeatureObject::View => {
                    // Only feature views: a plain materialized view is refused.
                    let snapshot = session.engine.catalog().snapshot();
                    let system = session.system_tables();
                    let found: Vec<Result<Object>> = {
                        let resolver = session.resolver(&snapshot, &system);
                        self.names
                            .iter()
                            .map(|n| resolver.object(n, Kind::MaterializedView))
                            .collect()
                    };
                    let mut names = Vec::new();
                    for (n, found) in self.names.iter().zip(found) {
                        match found {
                            Ok(o) if o.feature().is_some() => names.push(n.clone()),
                            Ok(o) => return Err(not_a_feature_view(&o.name)),
                            Err(e) if e.kind == ErrorKind::UndefinedTable && self.if_exists => {
                                session.notice(format!(
                                    "feature view \"{}\" does not exist, skipping",
                                    n
                                ));
                            }
                            Err(e) if e.kind == ErrorKind::UndefinedTable => {
                                return Err(Error::new(
                                    ErrorKind::UndefinedTable,
                                    format!("feature view \"{n}\" does not exist"),
                                ));
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    if !names.is_empty() {
                        ddl::drop(
                            session,
                            ObjectType::MaterializedView,
                            true,
                            names,
                            self.cascade,
                        )
                        .await?;
                    }
                    Ok(Output::command("DROP FEATURE VIEW"))
                }
                FeatureObject::Service => {
                    let mut gone: Vec<RelName> = Vec::new();
                    let snapshot = session.engine.catalog().snapshot();
                    for n in &self.names {
                        let (schema, name) = session.qualify(n)?;
                        let found = snapshot
                            .of_kind(Kind::FeatureService)
                            .any(|o| o.schema == schema && o.name == name);
                        if found {
                            gone.push(RelName::new(&schema, &name));
                        } else if self.if_exists {
                            session.notice(format!(
                                "feature service \"{name}\" does not exist, skipping"
                            ));
                        } else {
                            return Err(Error::new(
                                ErrorKind::UndefinedObject,
                                format!("feature service \"{name}\" does not exist"),
                            ));
                        }
                    }
                    session
                        .engine
                        .catalog()
                        .mutate(move |entries| {
                            entries.retain(|e| {
                                e.kind() != Kind::FeatureService
                                    || !gone
                                        .iter()
                                        .any(|g| g.schema == e.schema && g.name == e.name)
                            });
                            Ok(())
                        })
                        .await?;
                    Ok(Output::command("DROP FEATURE SERVICE"))
                }
            }
        })
    }
}
