//! `defaultLabels` rules: label and annotation keys checked, value templates parsed and checked
//! to render label values Kubernetes accepts.

use std::collections::BTreeMap;

use super::{Checker, FieldPath};
use crate::policy::model::{DefaultLabels, MetadataTarget};
use crate::policy::names::{
    LABEL_KEY_HINT, LABEL_VALUE_HINT, check_label_value, check_qualified_name, is_alnum,
};
use crate::policy::{CompiledDefaultLabels, CompiledRule, Template, TemplateSegment};

/// Checks a label value template: literal values must be valid label values; templated ones
/// must be able to render to one.
fn check_label_template(template: &Template, value: &str) -> Result<(), String> {
    if template.is_literal() {
        return check_label_value(value);
    }
    let literal_len: usize = template
        .0
        .iter()
        .map(|s| match s {
            TemplateSegment::Literal(t) => t.len(),
            _ => 1,
        })
        .sum();
    if literal_len > 63 {
        return Err("is longer than 63 characters even with one-character references".to_owned());
    }
    for s in &template.0 {
        if let TemplateSegment::Literal(t) = s
            && let Some(ch) = t
                .chars()
                .find(|&ch| !(is_alnum(ch) || ch == '-' || ch == '_' || ch == '.'))
        {
            return Err(format!("contains {ch:?}, which label values cannot hold"));
        }
    }
    if let Some(TemplateSegment::Literal(t)) = template.0.first()
        && !t.starts_with(is_alnum)
    {
        return Err("starts with a character other than a letter or digit".to_owned());
    }
    if let Some(TemplateSegment::Literal(t)) = template.0.last()
        && !t.ends_with(is_alnum)
    {
        return Err("ends with a character other than a letter or digit".to_owned());
    }
    Ok(())
}

/// Compiles a `defaultLabels` rule: checks keys and value templates, and parses the templates.
pub(super) fn compile(c: &mut Checker, d: &DefaultLabels, path: &FieldPath) -> CompiledRule {
    if d.labels.is_empty() && d.annotations.is_empty() {
        c.error(
            path.clone(),
            "the rule adds nothing: labels and annotations are both empty",
            "add `labels:` or `annotations:` entries, or delete the rule",
        );
    }
    if d.target.is_empty() {
        c.error(
            path.key("target"),
            "target is empty: the labels would be added nowhere",
            "use `target: [object, podTemplate]` (the default), `[object]` or `[podTemplate]`",
        );
    }
    const TEMPLATE_HINT: &str = "values may reference {{name}}, {{namespace}} and {{kind}}";
    let parse = |c: &mut Checker, field: &str, map: &BTreeMap<String, String>, labels: bool| {
        let mut out = Vec::with_capacity(map.len());
        for (k, v) in map {
            let p = path.key(field).key(k);
            if let Err(e) = check_qualified_name(k) {
                c.error(
                    p.clone(),
                    format!(
                        "invalid {} key {k:?}: {e}",
                        if labels { "label" } else { "annotation" }
                    ),
                    if k.contains("{{") {
                        "keys cannot use {{...}} references; only values can".to_owned()
                    } else {
                        LABEL_KEY_HINT.to_owned()
                    },
                );
            }
            match Template::parse(v) {
                Ok(t) => {
                    if labels && let Err(e) = check_label_template(&t, v) {
                        c.error(
                            p,
                            format!("label value {v:?} {e}"),
                            format!("{LABEL_VALUE_HINT}; {TEMPLATE_HINT}"),
                        );
                    } else {
                        out.push((k.clone(), t));
                    }
                }
                Err(message) => c.error(p, message, TEMPLATE_HINT),
            }
        }
        out
    };
    let labels = parse(c, "labels", &d.labels, true);
    let annotations = parse(c, "annotations", &d.annotations, false);
    CompiledRule::DefaultLabels(CompiledDefaultLabels {
        labels,
        annotations,
        object: d.target.contains(&MetadataTarget::Object),
        pod_template: d.target.contains(&MetadataTarget::PodTemplate),
    })
}
