//! `requireImageTag`: every container's image names a pinned version — a tag that is not
//! forbidden (`latest`), or a digest; optionally a digest is required.

use super::rule::{Context, Found};
use crate::json::Json;
use crate::policy::model::RequireImageTag;

/// An image reference split into its parts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ImageRef<'a> {
    /// Registry and repository (`registry:5000/team/app`).
    pub name: &'a str,
    /// The tag, if any.
    pub tag: Option<&'a str>,
    /// The digest (`sha256:...`), if any.
    pub digest: Option<&'a str>,
}

/// Parses `[registry[:port]/]repo[:tag][@digest]`; a `:` before the last `/` is a port.
pub(crate) fn parse_image(image: &str) -> ImageRef<'_> {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let last_segment = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_segment..].rfind(':') {
        Some(i) => ImageRef {
            name: &rest[..last_segment + i],
            tag: Some(&rest[last_segment + i + 1..]).filter(|t| !t.is_empty()),
            digest,
        },
        None => ImageRef {
            name: rest,
            tag: None,
            digest,
        },
    }
}

/// Checks every container's image.
pub(super) fn check(rule: &RequireImageTag, ctx: &Context<'_>, out: &mut Vec<Found>) {
    let w = &ctx.workload;
    for c in w.containers() {
        let Some(image) = c
            .value
            .get("image")
            .and_then(Json::as_str)
            .filter(|i| !i.is_empty())
        else {
            continue; // The apiserver rejects a container without an image.
        };
        let r = parse_image(image);
        let problem = if rule.require_digest && r.digest.is_none() {
            Some((
                format!("image \"{image}\" is not pinned by digest"),
                format!("use {}@sha256:<digest> (e.g. from `crane digest`)", r.name),
            ))
        } else if r.digest.is_some() {
            None
        } else {
            match r.tag {
                None => Some((
                    format!("image \"{image}\" has no tag (it resolves to :latest)"),
                    format!("pin a version, e.g. {}:1.2.3", r.name),
                )),
                Some(tag) if rule.forbidden_tags.iter().any(|t| t == tag) => Some((
                    format!("image \"{image}\" uses the forbidden tag :{tag}"),
                    format!("pin a version, e.g. {}:1.2.3", r.name),
                )),
                Some(_) => None,
            }
        };
        if let Some((message, hint)) = problem {
            out.push(Found::in_container(w, &c, &[".image"], message, hint));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::WorkloadKind;
    use crate::workload::Workload;
    use serde_json::json;

    #[test]
    fn image_references() {
        let cases = [
            ("nginx", "nginx", None, None),
            ("nginx:1.27", "nginx", Some("1.27"), None),
            ("registry:5000/app", "registry:5000/app", None, None),
            (
                "registry:5000/team/app:v2",
                "registry:5000/team/app",
                Some("v2"),
                None,
            ),
            ("app@sha256:abc", "app", None, Some("sha256:abc")),
            ("app:1@sha256:abc", "app", Some("1"), Some("sha256:abc")),
            ("app:", "app", None, None),
        ];
        for (image, name, tag, digest) in cases {
            assert_eq!(
                parse_image(image),
                ImageRef { name, tag, digest },
                "{image}"
            );
        }
    }

    fn run(rule: &RequireImageTag, images: &[&str]) -> Vec<String> {
        let containers: Vec<_> = images
            .iter()
            .enumerate()
            .map(|(i, im)| json!({"name": format!("c{i}"), "image": im}))
            .collect();
        let obj = json!({"spec": {"containers": containers}});
        let workload = Workload::new(WorkloadKind::Pod, &obj).expect("pod");
        let mut out = Vec::new();
        let ctx = Context {
            workload,
            namespace: None,
            cel: &crate::engine::cel_values::Input::default(),
        };
        check(rule, &ctx, &mut out);
        out.into_iter().map(|f| f.message).collect()
    }

    #[test]
    fn table() {
        let default = RequireImageTag {
            forbidden_tags: vec!["latest".into()],
            require_digest: false,
        };
        assert_eq!(
            run(
                &default,
                &["nginx:1.27", "app@sha256:abc", "registry:5000/app:v1"]
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            run(&default, &["nginx", "nginx:latest", "registry:5000/app"]),
            [
                "image \"nginx\" has no tag (it resolves to :latest)",
                "image \"nginx:latest\" uses the forbidden tag :latest",
                "image \"registry:5000/app\" has no tag (it resolves to :latest)",
            ]
        );
        let digest = RequireImageTag {
            forbidden_tags: vec![],
            require_digest: true,
        };
        assert_eq!(
            run(&digest, &["nginx:1.27", "app:1@sha256:abc"]),
            ["image \"nginx:1.27\" is not pinned by digest"]
        );
    }
}
