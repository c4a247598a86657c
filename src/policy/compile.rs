//! Compilation: turns a parsed [`PolicyDocument`] into a [`CompiledPolicy`], checking what
//! serde cannot (names, label syntax, selectors, container templates) and pre-rendering
//! sidecars and label templates.

use serde_json::Value;

use super::model::{MetadataTarget, PolicyDocument, Rule};
use super::{CompiledDefaultLabels, CompiledPolicy, CompiledRule, CompiledSidecar, Source};

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

/// A problem found while compiling one policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Dotted path inside the document (`spec.rules[0].injectSidecar.container.name`).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Compiles one document. Returns every problem found, not just the first.
pub fn compile_document(
    doc: PolicyDocument,
    source: Source,
) -> Result<CompiledPolicy, Vec<CompileError>> {
    let mut errors = Vec::new();
    let mut rules = Vec::with_capacity(doc.spec.rules.len());
    for (i, rule) in doc.spec.rules.into_iter().enumerate() {
        let path = format!("spec.rules[{i}].{}", rule.type_name());
        match compile_rule(rule, &path) {
            Ok(r) => rules.push(r),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(CompiledPolicy {
        name: doc.metadata.name,
        description: doc.spec.description,
        mode: doc.spec.mode,
        match_: doc.spec.match_,
        exclude: doc.spec.exclude,
        rules,
        source,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("k8s-openapi types always serialize to JSON")
}

fn compile_rule(rule: Rule, path: &str) -> Result<CompiledRule, Vec<CompileError>> {
    Ok(match rule {
        Rule::RequireProbes(r) => CompiledRule::RequireProbes(r),
        Rule::RequireResources(r) => CompiledRule::RequireResources(r),
        Rule::RequireImageTag(r) => CompiledRule::RequireImageTag(r),
        Rule::DisallowNamespaces(r) => CompiledRule::DisallowNamespaces(r),
        Rule::RequireLabels(r) => CompiledRule::RequireLabels(r),
        Rule::InjectSidecar(s) => {
            let mut container = s.container.clone();
            if s.native_sidecar {
                container.restart_policy = Some("Always".to_owned());
            }
            CompiledRule::InjectSidecar(Box::new(CompiledSidecar {
                name: s.container.name.clone(),
                container: to_json(&container),
                volumes: s
                    .volumes
                    .iter()
                    .map(|v| (v.name.clone(), to_json(v)))
                    .collect(),
                volume_mounts: s
                    .volume_mounts
                    .iter()
                    .map(|m| (m.name.clone(), m.mount_path.clone(), to_json(m)))
                    .collect(),
                native_sidecar: s.native_sidecar,
                target: s.target,
                opt_out_annotation: s.opt_out_annotation.clone(),
            }))
        }
        Rule::DefaultLabels(d) => {
            let mut errors = Vec::new();
            let mut parse = |field: &str, map: &std::collections::BTreeMap<String, String>| {
                map.iter()
                    .filter_map(|(k, v)| match Template::parse(v) {
                        Ok(t) => Some((k.clone(), t)),
                        Err(message) => {
                            errors.push(CompileError {
                                path: format!("{path}.{field}.{k}"),
                                message,
                                hint: "values may reference {{name}}, {{namespace}} and {{kind}}"
                                    .to_owned(),
                            });
                            None
                        }
                    })
                    .collect::<Vec<_>>()
            };
            let labels = parse("labels", &d.labels);
            let annotations = parse("annotations", &d.annotations);
            if !errors.is_empty() {
                return Err(errors);
            }
            CompiledRule::DefaultLabels(CompiledDefaultLabels {
                labels,
                annotations,
                object: d.target.contains(&MetadataTarget::Object),
                pod_template: d.target.contains(&MetadataTarget::PodTemplate),
            })
        }
    })
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
