//! Label and annotation value templates (`"{{namespace}}-{{name}}"`): parsed once when a
//! policy is compiled, rendered for each workload by the engine.

/// One piece of a label or annotation value template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSegment {
    /// Text copied as is.
    Literal(String),
    /// `{{name}}`: the object's name.
    Name,
    /// `{{namespace}}`: the object's namespace.
    Namespace,
    /// `{{kind}}`: the object's kind (`Deployment`).
    Kind,
}

/// A parsed value template such as `"{{namespace}}-{{name}}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub Vec<TemplateSegment>);

impl Template {
    /// Parses `{{name}}`, `{{namespace}}` and `{{kind}}` references (spaces inside the braces
    /// allowed). Any other `{{...}}` is an error.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                segments.push(TemplateSegment::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unclosed '{{{{' in {text:?}"))?;
            segments.push(match after[..end].trim() {
                "name" => TemplateSegment::Name,
                "namespace" => TemplateSegment::Namespace,
                "kind" => TemplateSegment::Kind,
                other => {
                    return Err(format!(
                        "unknown reference '{{{{{other}}}}}' in {text:?}: use {{{{name}}}}, {{{{namespace}}}} or {{{{kind}}}}"
                    ));
                }
            });
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            segments.push(TemplateSegment::Literal(rest.to_owned()));
        }
        Ok(Template(segments))
    }

    /// Whether the template has no references (its value is fixed).
    pub fn is_literal(&self) -> bool {
        self.0
            .iter()
            .all(|s| matches!(s, TemplateSegment::Literal(_)))
    }

    /// Renders the template; `None` when a referenced value is unknown (e.g. no namespace).
    pub fn render(&self, name: &str, namespace: Option<&str>, kind: &str) -> Option<String> {
        let mut out = String::new();
        for s in &self.0 {
            match s {
                TemplateSegment::Literal(t) => out.push_str(t),
                TemplateSegment::Name if !name.is_empty() => out.push_str(name),
                TemplateSegment::Namespace => out.push_str(namespace?),
                TemplateSegment::Kind => out.push_str(kind),
                TemplateSegment::Name => return None,
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_render() {
        let t = Template::parse("{{ namespace }}-{{name}}").expect("parse");
        assert_eq!(
            t.render("web", Some("shop"), "Deployment").as_deref(),
            Some("shop-web")
        );
        assert_eq!(t.render("web", None, "Deployment"), None);
        assert!(Template::parse("plain").expect("parse").is_literal());
        assert!(Template::parse("{{nam}}").is_err());
        assert!(Template::parse("{{name").is_err());
    }
}
