//! Translates the core [`Query`](logbook_core::Query) conditions into SQL, once for
//! both stores. Values are always bound as parameters, never spliced into SQL.

use logbook_core::query::{Comparison, Condition, Field, Scalar};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// SQLite: `?`
    Question,
    /// PostgreSQL: `$1`, `$2`, ...
    Dollar,
}

/// Builds a WHERE clause and collects its parameters in order.
#[derive(Debug)]
pub struct SqlBuilder {
    pub params: Vec<Scalar>,
    style: Placeholders,
}

/// The column that stores a field. Quoted because `user` is reserved in PostgreSQL.
pub fn column(field: Field) -> &'static str {
    match field {
        Field::Id => "\"id\"",
        Field::Ts => "\"ts\"",
        Field::Kind => "\"kind\"",
        Field::Level => "\"level\"",
        Field::Category => "\"category\"",
        Field::Source => "\"source\"",
        Field::Instance => "\"instance\"",
        Field::Logger => "\"logger\"",
        Field::User => "\"user\"",
        Field::UserId => "\"user_id\"",
        Field::DomainId => "\"domain_id\"",
        Field::ProjectId => "\"project_id\"",
        Field::ObjectType => "\"object_type\"",
        Field::ObjectId => "\"object_id\"",
        Field::Action => "\"action\"",
        Field::Status => "\"status\"",
        Field::ResponseCode => "\"response_code\"",
        Field::RequestId => "\"request_id\"",
        Field::ParentRequestId => "\"parent_request_id\"",
        Field::Message => "\"message\"",
        // The column that holds the key; conditions read the key through
        // `column_expr`, and no API sorts or groups by a payload key.
        Field::Data | Field::DataText(_) => "\"data\"",
    }
}

/// `ORDER BY ... [LIMIT ... OFFSET ...]` of a group query over the grouped
/// columns `cols`, binding the limit and offset. PostgreSQL needs the placement of
/// NULLs spelled out to sort as SQLite does (first ascending, last descending).
pub fn group_order(b: &mut SqlBuilder, groups: &crate::GroupQuery, cols: &[&str]) -> String {
    let explicit_nulls = b.style == Placeholders::Dollar;
    let term = |expr: &str, descending: bool| match (descending, explicit_nulls) {
        (false, false) => format!("{expr} ASC"),
        (true, false) => format!("{expr} DESC"),
        (false, true) => format!("{expr} ASC NULLS FIRST"),
        (true, true) => format!("{expr} DESC NULLS LAST"),
    };
    let mut terms: Vec<String> = groups
        .sort
        .iter()
        .filter_map(|s| match s.by {
            crate::GroupBy::LastTs => Some(term("max(ts)", s.descending)),
            crate::GroupBy::Key(i) => cols.get(i).map(|c| term(c, s.descending)),
        })
        .collect();
    terms.extend(cols.iter().map(|c| term(c, false)));
    let mut sql = format!("ORDER BY {}", terms.join(", "));
    if groups.limit.is_some() || groups.offset > 0 {
        // SQLite needs a LIMIT to take an OFFSET; -1 (all) is refused by PostgreSQL.
        let limit = groups
            .limit
            .map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let offset = i64::try_from(groups.offset).unwrap_or(i64::MAX);
        let limit = b.bind(Scalar::Int(limit));
        let offset = b.bind(Scalar::Int(offset));
        sql.push_str(&format!(" LIMIT {limit} OFFSET {offset}"));
    }
    sql
}

impl SqlBuilder {
    pub fn new(style: Placeholders) -> SqlBuilder {
        SqlBuilder {
            params: Vec::new(),
            style,
        }
    }

    pub fn bind(&mut self, value: Scalar) -> String {
        self.params.push(value);
        match self.style {
            Placeholders::Question => "?".to_string(),
            Placeholders::Dollar => format!("${}", self.params.len()),
        }
    }

    fn column_expr(&self, prefix: &str, field: Field) -> String {
        let col = format!("{prefix}{}", column(field));
        match (self.style, field) {
            (Placeholders::Dollar, Field::Data) => format!("{col}::text"),
            // Only string values count, as in `field_value`; the key is spliced only
            // after checking it is a plain identifier.
            (_, Field::DataText(key)) if !Field::is_plain_data_key(key) => "NULL".to_string(),
            (Placeholders::Question, Field::DataText(key)) => format!(
                "(CASE WHEN json_type({col}, '$.{key}') = 'text' THEN json_extract({col}, '$.{key}') END)"
            ),
            (Placeholders::Dollar, Field::DataText(key)) => format!(
                "(CASE WHEN jsonb_typeof({col}::jsonb -> '{key}') = 'string' THEN {col}::jsonb ->> '{key}' END)"
            ),
            _ => col,
        }
    }

    /// `cond AND cond ...`, or `1=1` when there are none.
    pub fn all(&mut self, conditions: &[Condition], prefix: &str) -> String {
        if conditions.is_empty() {
            return "1=1".to_string();
        }
        conditions
            .iter()
            .map(|c| self.condition(c, prefix))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    pub fn condition(&mut self, condition: &Condition, prefix: &str) -> String {
        match condition {
            Condition::In(field, values) => self.membership(prefix, *field, values, false),
            Condition::NotIn(field, values) => self.membership(prefix, *field, values, true),
            Condition::Compare(field, cmp, value) => {
                let op = match cmp {
                    Comparison::Lt => "<",
                    Comparison::Le => "<=",
                    Comparison::Gt => ">",
                    Comparison::Ge => ">=",
                };
                let col = self.column_expr(prefix, *field);
                let p = self.bind(self.typed(*field, value));
                format!("{col} {op} {p}")
            }
            // No stored text holds a NUL (ingest refuses it, and PostgreSQL cannot
            // store one), so a needle with one matches nothing; binding it would
            // fail the whole query instead.
            Condition::Contains(_, needle) | Condition::ContainsCaseSensitive(_, needle)
                if needle.contains('\0') =>
            {
                "FALSE".to_string()
            }
            Condition::Contains(field, needle) => {
                let col = self.column_expr(prefix, *field);
                let p = self.bind(Scalar::Text(needle.to_lowercase()));
                match self.style {
                    Placeholders::Question => format!("instr(lower({col}), {p}) > 0"),
                    Placeholders::Dollar if field.is_integer() => {
                        format!("strpos({col}::text, {p}) > 0")
                    }
                    Placeholders::Dollar => format!("strpos(lower({col}), {p}) > 0"),
                }
            }
            Condition::ContainsCaseSensitive(field, needle) => {
                let col = self.column_expr(prefix, *field);
                let p = self.bind(Scalar::Text(needle.clone()));
                match self.style {
                    Placeholders::Question => format!("instr(CAST({col} AS TEXT), {p}) > 0"),
                    Placeholders::Dollar => format!("strpos({col}::text, {p}) > 0"),
                }
            }
            Condition::StartsWith(field, prefix_text) => {
                let col = self.column_expr(prefix, *field);
                let n = prefix_text.chars().count();
                let p = self.bind(Scalar::Text(prefix_text.clone()));
                match self.style {
                    Placeholders::Question => format!("substr(CAST({col} AS TEXT), 1, {n}) = {p}"),
                    Placeholders::Dollar => format!("substr({col}::text, 1, {n}) = {p}"),
                }
            }
            Condition::Any(conditions) => {
                if conditions.is_empty() {
                    return "1=0".to_string();
                }
                let parts: Vec<String> = conditions
                    .iter()
                    .map(|c| self.condition(c, prefix))
                    .collect();
                format!("({})", parts.join(" OR "))
            }
            Condition::All(conditions) => format!("({})", self.all(conditions, prefix)),
            // A condition on an absent field is NULL in SQL and false in
            // `Condition::matches`; coalescing first keeps `NOT` true for it, as there.
            Condition::Not(condition) => {
                let inner = self.condition(condition, prefix);
                format!("NOT coalesce(({inner}), FALSE)")
            }
        }
    }

    fn membership(
        &mut self,
        prefix: &str,
        field: Field,
        values: &[Scalar],
        negate: bool,
    ) -> String {
        let col = self.column_expr(prefix, field);
        if values.is_empty() {
            return if negate { "1=1".into() } else { "1=0".into() };
        }
        let placeholders: Vec<String> = values
            .iter()
            .map(|v| {
                let v = self.typed(field, v);
                self.bind(v)
            })
            .collect();
        let list = placeholders.join(", ");
        if negate {
            format!("({col} IS NULL OR {col} NOT IN ({list}))")
        } else if placeholders.len() == 1 {
            format!("{col} = {list}")
        } else {
            format!("{col} IN ({list})")
        }
    }

    /// Text compared with an integer column (or the reverse) is converted so that
    /// both stores compare like with like.
    fn typed(&self, field: Field, value: &Scalar) -> Scalar {
        match (field.is_integer(), value) {
            (true, Scalar::Text(t)) => t
                .parse::<i64>()
                .map(Scalar::Int)
                .unwrap_or(Scalar::Int(i64::MIN)),
            (false, Scalar::Int(n)) => Scalar::Text(n.to_string()),
            _ => value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbook_core::{Level, Query};

    #[test]
    fn conditions_become_bound_sql() {
        let q = Query::newest_first()
            .min_level(Level::Error)
            .values(Field::Category, &["image", "export"])
            .expect("valid")
            .text_contains("Time");
        let mut b = SqlBuilder::new(Placeholders::Dollar);
        let sql = b.all(&q.conditions, "r.");
        assert_eq!(
            sql,
            "r.\"level\" >= $1 AND r.\"category\" IN ($2, $3) AND strpos(lower(r.\"message\"), $4) > 0"
        );
        assert_eq!(b.params[3], Scalar::Text("time".into()));
    }

    #[test]
    fn case_sensitive_substrings_and_negations_are_bound() {
        let negated = Condition::Not(Box::new(Condition::ContainsCaseSensitive(
            Field::Message,
            "Err".into(),
        )));
        let mut b = SqlBuilder::new(Placeholders::Question);
        assert_eq!(
            b.condition(&negated, ""),
            "NOT coalesce((instr(CAST(\"message\" AS TEXT), ?) > 0), FALSE)"
        );
        let mut b = SqlBuilder::new(Placeholders::Dollar);
        assert_eq!(
            b.condition(&negated, "r."),
            "NOT coalesce((strpos(r.\"message\"::text, $1) > 0), FALSE)"
        );
        assert_eq!(b.params, [Scalar::Text("Err".into())]);
    }

    #[test]
    fn a_data_key_is_read_as_text_and_odd_keys_are_never_spliced() {
        let mut b = SqlBuilder::new(Placeholders::Question);
        let sql = b.condition(
            &Condition::In(Field::DataText("args"), vec![Scalar::Text("x".into())]),
            "",
        );
        assert_eq!(
            sql,
            "(CASE WHEN json_type(\"data\", '$.args') = 'text' THEN json_extract(\"data\", '$.args') END) = ?"
        );
        let sql = b.condition(
            &Condition::In(
                Field::DataText("a') OR 1=1 --"),
                vec![Scalar::Text("x".into())],
            ),
            "",
        );
        assert_eq!(sql, "NULL = ?");
    }
}
