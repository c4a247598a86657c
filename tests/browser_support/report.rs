//! Checks an HTML report (`portcullis audit -o html`) in the browser against the JSON report
//! of the same audit: what a person sees must be what the JSON says. Used by
//! tests/report_browser.rs (fixtures) and tests/e2e_cluster.rs (a real cluster).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Browser, Page};

/// What the checks measured.
#[derive(Debug)]
pub struct Checked {
    /// Milliseconds from navigation start to the page's script having run (the
    /// `portcullis-usable` performance mark).
    pub usable_ms: f64,
    /// The screenshot kept, under `target/report-screenshots/`.
    pub screenshot: PathBuf,
}

/// What else the page shows that the JSON report alone cannot tell.
#[derive(Debug, Default)]
pub struct Expect<'a> {
    /// The label namespaces are grouped by (`--group-by`), with each namespace's value.
    pub groups: Option<(&'a str, BTreeMap<String, String>)>,
    /// The baseline's JSON report (`--baseline`).
    pub baseline: Option<&'a Value>,
}

fn n(v: &Value) -> Result<usize, String> {
    let text = v.as_str().ok_or_else(|| format!("not text: {v}"))?;
    text.trim()
        .replace(',', "")
        .parse()
        .map_err(|e| format!("{text:?} is not a count: {e}"))
}

fn judged(o: &Value) -> bool {
    matches!(o["verdict"].as_str(), Some("deny" | "warn" | "pass"))
}

fn namespace(o: &Value) -> String {
    o["namespace"]
        .as_str()
        .unwrap_or("(no namespace)")
        .to_owned()
}

fn violations(o: &Value) -> impl Iterator<Item = &Value> {
    o["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["kind"] == "violation")
}

/// The violations, and those of the policies that are `off` (judged for readiness only).
fn measured(o: &Value) -> impl Iterator<Item = &Value> {
    violations(o).chain(o["offViolations"].as_array().into_iter().flatten())
}

fn excepted(o: &Value) -> bool {
    o["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["effect"] == "excepted")
}

/// Counts per namespace as the page's tables show them: workloads, deny, warn, pass,
/// excepted, skipped.
fn tallies(json: &Value) -> BTreeMap<String, [usize; 6]> {
    let mut out: BTreeMap<String, [usize; 6]> = BTreeMap::new();
    for o in json["objects"].as_array().into_iter().flatten() {
        let v = o["verdict"].as_str().unwrap_or("");
        if !matches!(v, "deny" | "warn" | "pass" | "skipped") {
            continue;
        }
        let t = out.entry(namespace(o)).or_default();
        match v {
            "deny" => t[1] += 1,
            "warn" => t[2] += 1,
            "pass" => t[3] += 1,
            _ => {
                t[5] += 1;
                continue;
            }
        }
        t[0] += 1;
        if excepted(o) {
            t[4] += 1;
        }
    }
    out
}

const KEYS: [&str; 6] = ["workloads", "deny", "warn", "pass", "excepted", "skipped"];

/// The rows of a tally table (`#namespace-table`, `#group-table`): name and counts, in order.
fn table(b: &mut Browser, p: &Page, id: &str) -> Result<Vec<(String, [usize; 6])>, String> {
    let rows = b.eval(
        p,
        &format!(
            "[...document.querySelectorAll('#{id} tbody tr')].map(r => [r.dataset.name, Object.fromEntries([...r.querySelectorAll('[data-k]')].map(c => [c.dataset.k, c.textContent]))])"
        ),
    )?;
    let mut out = Vec::new();
    for r in rows.as_array().into_iter().flatten() {
        let mut t = [0; 6];
        for (i, k) in KEYS.iter().enumerate() {
            t[i] = n(&r[1][k])?;
        }
        out.push((r[0].as_str().unwrap_or("").to_owned(), t));
    }
    Ok(out)
}

fn finding_key(o: &Value, f: &Value) -> String {
    [
        o["kind"].as_str().unwrap_or(""),
        o["namespace"].as_str().unwrap_or(""),
        o["name"].as_str().unwrap_or(""),
        f["policy"].as_str().unwrap_or(""),
        f["rule"].as_str().unwrap_or(""),
        f["container"].as_str().unwrap_or(""),
        f["field"].as_str().unwrap_or(""),
    ]
    .join("\u{1f}")
}

fn keys(json: &Value) -> BTreeSet<String> {
    json["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| judged(o))
        .flat_map(|o| violations(o).map(move |f| finding_key(o, f)))
        .collect()
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// Opens `html` in a new browser, checks it against `json` (and `expect`), with JavaScript on
/// and off, and keeps a screenshot as `target/report-screenshots/NAME.png`.
pub fn check_report(
    html: &Path,
    json: &Value,
    name: &str,
    expect: &Expect<'_>,
) -> Result<Checked, String> {
    let mut b = Browser::start()?;
    let p = b.page(true)?;
    let url = b.open(&p, html)?;
    ensure(
        b.eval(&p, "document.documentElement.dataset.ready")? == "true",
        || "the page's script did not run to its end".to_owned(),
    )?;
    let usable_ms = b
        .eval(
            &p,
            "performance.getEntriesByName('portcullis-usable')[0].startTime",
        )?
        .as_f64()
        .ok_or("no portcullis-usable mark")?;

    // The summary.
    let cards = b.eval(
        &p,
        "Object.fromEntries([...document.querySelectorAll('#summary [data-count]')].map(e => [e.dataset.count, e.textContent]))",
    )?;
    let s = &json["summary"];
    for key in [
        "judged", "denied", "warned", "passed", "skipped", "other", "errors",
    ] {
        let shown = n(&cards[key])?;
        let want = s[key].as_u64().unwrap_or(u64::MAX) as usize;
        ensure(shown == want, || {
            format!("summary {key}: the page shows {shown}, the JSON says {want}")
        })?;
    }
    let objects: Vec<&Value> = json["objects"].as_array().into_iter().flatten().collect();
    let want_excepted = objects.iter().filter(|o| judged(o) && excepted(o)).count();
    ensure(n(&cards["excepted"])? == want_excepted, || {
        format!(
            "summary excepted: the page shows {}, the JSON says {want_excepted}",
            cards["excepted"]
        )
    })?;
    let result = b.eval(&p, "document.getElementById('result').textContent")?;
    let fails = s["denied"].as_u64() > Some(0) || s["errors"].as_u64() > Some(0);
    ensure(
        result.as_str().is_some_and(|r| {
            r.starts_with(if fails {
                "result: FAIL"
            } else {
                "result: PASS"
            })
        }),
        || format!("result line {result}"),
    )?;

    // Namespaces, worst first.
    let want = tallies(json);
    let shown = table(&mut b, &p, "namespace-table")?;
    let shown_map: BTreeMap<String, [usize; 6]> = shown.iter().cloned().collect();
    ensure(shown_map == want, || {
        format!("namespaces: the page shows {shown_map:?}, the JSON says {want:?}")
    })?;
    let order: Vec<(usize, usize)> = shown.iter().map(|(_, t)| (t[1], t[2])).collect();
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    ensure(order == sorted, || {
        format!("namespaces are not worst first: {shown:?}")
    })?;

    // Groups by a namespace label.
    if let Some((label, values)) = &expect.groups {
        let mut want: BTreeMap<String, [usize; 6]> = BTreeMap::new();
        for (ns, t) in &tallies(json) {
            let g = values
                .get(ns)
                .cloned()
                .unwrap_or_else(|| format!("(no {label} label)"));
            let e = want.entry(g).or_default();
            for i in 0..6 {
                e[i] += t[i];
            }
        }
        let shown: BTreeMap<String, [usize; 6]> =
            table(&mut b, &p, "group-table")?.into_iter().collect();
        ensure(shown == want, || {
            format!("groups by {label}: the page shows {shown:?}, expected {want:?}")
        })?;
    }

    // Readiness: what enforce would deny today, per policy, `off` ones included: the JSON
    // report's `readiness`; for the policies that run, also what their findings say.
    let rows = b.eval(
        &p,
        "[...document.querySelectorAll('#readiness-table tbody tr')].map(r => [r.dataset.policy, r.querySelector('[data-would-deny]').dataset.wouldDeny, r.cells[2].textContent])",
    )?;
    let readiness: BTreeMap<&str, &Value> = json["readiness"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["policy"].as_str()?, r)))
        .collect();
    for r in rows.as_array().into_iter().flatten() {
        let policy = r[0].as_str().unwrap_or("");
        let shown = r[1].as_str().unwrap_or("");
        let (want, selected) = readiness.get(policy).map_or((0, 0), |r| {
            (
                r["wouldDeny"].as_u64().unwrap_or(0),
                r["selected"].as_u64().unwrap_or(0),
            )
        });
        ensure(
            shown == want.to_string() && n(&r[2])? == selected as usize,
            || {
                format!(
                    "readiness of {policy}: the page shows {shown} of {}, the JSON says {want} of {selected}",
                    r[2]
                )
            },
        )?;
        let from_findings = objects
            .iter()
            .filter(|o| {
                judged(o) && measured(o).any(|f| f["policy"] == policy && f["effect"] != "excepted")
            })
            .count();
        ensure(from_findings as u64 == want, || {
            format!(
                "readiness of {policy}: {want} in the JSON's readiness, {from_findings} from its findings"
            )
        })?;
    }

    // Coming schedule steps: the workloads each will deny.
    let steps = b.eval(
        &p,
        "[...document.querySelectorAll('#schedules tr[data-policy]')].map(r => [r.dataset.policy, r.dataset.from, r.querySelector('[data-k=denied]').textContent])",
    )?;
    for r in steps.as_array().into_iter().flatten() {
        let (policy, from) = (r[0].as_str().unwrap_or(""), r[1].as_str().unwrap_or(""));
        let want = objects
            .iter()
            .filter(|o| {
                judged(o)
                    && measured(o).any(|f| {
                        f["policy"] == policy
                            && f["enforcedFrom"] == from
                            && (f["exception"].is_null()
                                || f["exception"]["expires"].as_str().unwrap_or("") <= from)
                    })
            })
            .count();
        ensure(n(&r[2])? == want, || {
            format!(
                "schedule step {policy} from {from}: the page shows {}, the JSON says {want}",
                r[2]
            )
        })?;
    }

    // Exceptions: what each excepted, and which matched nothing.
    let rows = b.eval(
        &p,
        "[...document.querySelectorAll('#exception-table tbody tr')].map(r => [r.dataset.exception, r.querySelector('[data-k=workloads]').textContent, r.querySelector('[data-k=findings]').textContent, r.lastElementChild.textContent])",
    )?;
    let unused: BTreeSet<&str> = json["unusedExceptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for r in rows.as_array().into_iter().flatten() {
        let name = r[0].as_str().unwrap_or("");
        let of = |f: &&Value| f["exception"]["name"] == name;
        let workloads = objects
            .iter()
            .filter(|o| {
                o["findings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|f| of(&f))
            })
            .count();
        let findings: usize = objects
            .iter()
            .map(|o| {
                o["findings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|f| of(f))
                    .count()
            })
            .sum();
        ensure(n(&r[1])? == workloads && n(&r[2])? == findings, || {
            format!(
                "exception {name}: the page shows {} workloads, {} findings; the JSON says {workloads}, {findings}",
                r[1], r[2]
            )
        })?;
        let status = r[3].as_str().unwrap_or("");
        ensure(
            unused.contains(name) == status.contains("matched nothing"),
            || {
                format!(
                    "exception {name}: status {status:?}, unused in the JSON: {}",
                    unused.contains(name)
                )
            },
        )?;
    }

    // Since the baseline.
    if let Some(before) = expect.baseline {
        let (then, now) = (keys(before), keys(json));
        let shown = b.eval(
            &p,
            "[document.querySelector('[data-count=new]').textContent, document.querySelector('[data-count=fixed]').textContent]",
        )?;
        let (new, fixed) = (now.difference(&then).count(), then.difference(&now).count());
        ensure(n(&shown[0])? == new && n(&shown[1])? == fixed, || {
            format!(
                "since the baseline: the page shows {shown}, the JSON reports say {new} new and {fixed} fixed"
            )
        })?;
    }

    // Every violation and notice is shown, under its workload (unless the page says it cut).
    let cut = b.eval(&p, "document.getElementById('cut') !== null")? == true;
    if !cut {
        // A group's findings are shown once for each of its workloads.
        let shown = b.eval(
            &p,
            "[...document.querySelectorAll('#findings ul.findings')].map(u => u.children.length * Number(u.closest('article').dataset.workloads || 1)).reduce((a, b) => a + b, 0)",
        )?;
        let want: usize = objects
            .iter()
            .map(|o| {
                o["findings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|f| f["kind"] != "mutation")
                    .count()
            })
            .sum();
        ensure(shown.as_u64() == Some(want as u64), || {
            format!("findings shown: {shown}, in the JSON: {want}")
        })?;
    }

    // Filtering to what fails (CSS), and back.
    let visible_rows = "[...document.querySelectorAll('#namespace-table tbody tr')].filter(r => r.checkVisibility()).map(r => r.dataset.name)";
    b.eval(&p, "document.getElementById('only-failing').click()")?;
    let failing: Vec<String> = tallies(json)
        .into_iter()
        .filter(|(_, t)| t[1] > 0)
        .map(|(n, _)| n)
        .collect();
    let mut shown: Vec<String> =
        serde_json::from_value(b.eval(&p, visible_rows)?).map_err(|e| e.to_string())?;
    shown.sort();
    ensure(shown == failing, || {
        format!("only what fails: namespaces shown {shown:?}, failing {failing:?}")
    })?;
    let articles = b.eval(
        &p,
        "[...document.querySelectorAll('#findings article.w')].filter(a => a.checkVisibility()).flatMap(a => Array(Number(a.dataset.workloads || 1)).fill(a.dataset.verdict))",
    )?;
    let verdicts: Vec<&str> = articles
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    ensure(verdicts.iter().all(|v| *v == "deny"), || {
        format!("only what fails shows workloads {verdicts:?}")
    })?;
    if !cut {
        let denied = s["denied"].as_u64().unwrap_or(0) as usize;
        ensure(verdicts.len() == denied, || {
            format!(
                "only what fails shows {} workloads, {denied} were denied",
                verdicts.len()
            )
        })?;
    }
    b.eval(&p, "document.getElementById('only-failing').click()")?;
    let all = b.eval(&p, visible_rows)?;
    ensure(all.as_array().map(Vec::len) == Some(want.len()), || {
        format!("after unfiltering: {all}")
    })?;

    // The filter by name (script).
    // (The worst namespace: it has workloads with findings, if any has.)
    if let Some((ns, _)) = shown_map.iter().max_by_key(|(_, t)| (t[1], t[2])) {
        let q = serde_json::to_string(ns).map_err(|e| e.to_string())?;
        let names = b.eval(
            &p,
            &format!("(() => {{ const i = document.getElementById('name-filter'); i.value = {q}; i.dispatchEvent(new Event('input')); return [...document.querySelectorAll('#findings .w')].filter(a => a.checkVisibility()).map(a => a.dataset.name); }})()"),
        )?;
        let names: Vec<&str> = names
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        ensure(
            !names.is_empty() && names.iter().all(|n| n.contains(ns.as_str())),
            || format!("filter by {ns}: {names:?}"),
        )?;
        b.eval(&p, "(() => { const i = document.getElementById('name-filter'); i.value = ''; i.dispatchEvent(new Event('input')); })()")?;
    }
    // A workload of a group of workloads with the same findings: its group stays, showing
    // only that workload's name.
    let member = b.eval(
        &p,
        "(() => { const g = document.querySelector('#findings article.group'); if (!g) return null; const name = g.querySelector('.members > li').firstChild.textContent.trim(); const i = document.getElementById('name-filter'); i.value = g.dataset.name + name; i.dispatchEvent(new Event('input')); const shown = [...document.querySelectorAll('#findings .w')].filter(a => a.checkVisibility()); const r = [shown.length, shown[0] === g, [...g.querySelectorAll('.members > li')].filter(l => l.checkVisibility()).map(l => l.firstChild.textContent.trim()), name]; i.value = ''; i.dispatchEvent(new Event('input')); return r; })()",
    )?;
    if !member.is_null() {
        ensure(
            member[0] == 1 && member[1] == true && member[2] == serde_json::json!([member[3]]),
            || {
                format!(
                    "filter by a grouped workload's name: [shown, the group, its names shown, the name] {member}"
                )
            },
        )?;
    }

    // Sorting (script): by namespace name, ascending.
    let sorted = b.eval(
        &p,
        "(() => { document.querySelector('#namespace-table thead th button').click(); const n = [...document.querySelectorAll('#namespace-table tbody tr')].map(r => r.dataset.name); return [n.length, n.every((x, i) => i == 0 || n[i - 1].localeCompare(x) <= 0)]; })()",
    )?;
    ensure(
        sorted[0].as_u64() == Some(want.len() as u64) && sorted[1] == true,
        || format!("sorting by namespace: {sorted}"),
    )?;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/report-screenshots");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let png = b.screenshot(&p, true, 4000.0)?;
    let screenshot = dir.join(format!("{name}.png"));
    std::fs::write(&screenshot, png).map_err(|e| e.to_string())?;

    // With JavaScript off: the content is there, and the CSS filter works.
    let q = b.page(false)?;
    b.open(&q, html)?;
    let ready = b.eval(&q, "document.documentElement.dataset.ready ?? null")?;
    ensure(ready.is_null(), || {
        "the page's script ran with JavaScript off".to_owned()
    })?;
    let judged_text = b.eval(
        &q,
        "document.querySelector('[data-count=judged]').textContent",
    )?;
    ensure(
        n(&judged_text)? == s["judged"].as_u64().unwrap_or(0) as usize,
        || format!("JavaScript off: judged {judged_text}"),
    )?;
    let rows = b.eval(
        &q,
        "document.querySelectorAll('#namespace-table tbody tr').length",
    )?;
    ensure(rows.as_u64() == Some(want.len() as u64), || {
        format!("JavaScript off: {rows} namespace rows")
    })?;
    b.eval(&q, "document.getElementById('only-failing').click()")?;
    let mut shown: Vec<String> =
        serde_json::from_value(b.eval(&q, visible_rows)?).map_err(|e| e.to_string())?;
    shown.sort();
    ensure(shown == failing, || {
        format!("JavaScript off, only what fails: {shown:?}, failing {failing:?}")
    })?;

    // No request but the file itself, nothing logged as an error.
    let requests: Vec<String> = b
        .requests()
        .into_iter()
        .filter(|r| r != &url && !r.starts_with("data:") && r != "about:blank")
        .collect();
    ensure(requests.is_empty(), || {
        format!("the page made network requests: {requests:?}")
    })?;
    let errors = b.errors();
    ensure(errors.is_empty(), || {
        format!("the page logged errors: {errors:?}")
    })?;
    Ok(Checked {
        usable_ms,
        screenshot,
    })
}
