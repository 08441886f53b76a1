//! Rule files as operators write them, run over requests.

use super::*;

fn rules(text: &str) -> Result<RuleSet, WafError> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("rules.conf"), text).expect("write");
    std::fs::write(
        dir.path().join("words.data"),
        "# bad words\nunion select\nsleep(\n",
    )
    .expect("write");
    load(&["*.conf".to_string()], dir.path(), 1)
}

fn get(set: &RuleSet, uri: &str, headers: &[(&str, &str)]) -> Outcome {
    let headers = headers
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    set.inspect(&Request {
        method: "GET",
        uri,
        protocol: "HTTP/1.1",
        headers,
        remote_addr: "192.0.2.7".into(),
        unique_id: "rid-1",
        ..Request::default()
    })
}

#[test]
fn a_rule_denies_what_it_matches_after_its_transformations() {
    let set = rules(
        "SecRule ARGS \"@rx <script\" \"id:1,phase:2,deny,status:403,t:none,t:urlDecodeUni,t:lowercase,msg:'XSS in %{MATCHED_VAR_NAME}'\"\n",
    )
    .expect("loads");
    let o = get(&set, "/?q=%3CScRiPt%3E", &[]);
    let deny = o.deny.expect("denied");
    assert_eq!((deny.id, deny.status), (1, 403));
    assert_eq!(deny.msg, "XSS in ARGS:q");
    assert!(get(&set, "/?q=hello", &[]).deny.is_none());
}

#[test]
fn anomaly_scores_add_up_and_a_threshold_rule_blocks() {
    let set = rules(
        r#"SecDefaultAction "phase:2,pass,log"
SecAction "id:900110,phase:1,pass,nolog,setvar:tx.inbound_anomaly_score_threshold=5"
SecRule REQUEST_HEADERS:User-Agent "@pmFromFile words.data" "id:10,phase:1,block,t:lowercase,msg:'bad agent',setvar:'tx.anomaly_score=+%{tx.critical_score}'"
SecAction "id:11,phase:1,pass,nolog,setvar:tx.critical_score=5"
SecRule ARGS_NAMES|ARGS "@pm union select" "id:12,phase:2,block,t:lowercase,msg:'SQL words',setvar:tx.anomaly_score=+3"
SecRule REQUEST_COOKIES:/^sess/ "@contains '" "id:13,phase:2,block,msg:'quote in a session cookie',setvar:tx.anomaly_score=+3"
SecRule TX:ANOMALY_SCORE "@ge %{tx.inbound_anomaly_score_threshold}" "id:949110,phase:2,deny,msg:'Inbound Anomaly Score Exceeded (Total Score: %{TX.ANOMALY_SCORE})'"
"#,
    )
    .expect("loads");
    // One SQL word: 3 points, under 5.
    let o = get(&set, "/?a=1+UNION+all", &[]);
    assert!(o.deny.is_none(), "{o:?}");
    assert_eq!(o.anomaly_score, 3);
    assert_eq!(o.matched.first().map(|h| h.id), Some(12));
    // Two findings: 6 points, the threshold rule denies.
    let o = get(&set, "/?a=union", &[("Cookie", "session='x")]);
    assert_eq!(o.deny.as_ref().map(|h| h.id), Some(949110), "{o:?}");
    assert_eq!(o.anomaly_score, 6);
    assert_eq!(
        o.deny.expect("deny").msg,
        "Inbound Anomaly Score Exceeded (Total Score: 6)"
    );
}

#[test]
fn chains_markers_exclusions_counts_and_removals() {
    let set = rules(
        r#"SecRule REQUEST_METHOD "@streq POST" "id:20,phase:1,deny,chain"
    SecRule &REQUEST_HEADERS:Content-Type "@eq 0"
SecRule REQUEST_FILENAME "@beginsWith /health" "id:21,phase:2,pass,nolog,skipAfter:END-CHECKS"
SecRule ARGS|!ARGS:token "@rx ^[0-9a-f]{32}$" "id:22,phase:2,deny,msg:'a hash in an argument'"
SecMarker END-CHECKS
SecRule REQUEST_HEADERS_NAMES "@rx ^x-debug$" "id:23,phase:1,deny,t:lowercase"
SecRuleRemoveById 23
"#,
    )
    .expect("loads");
    let hash = "0123456789abcdef0123456789abcdef";
    // The chain needs both links: a GET without a content type passes.
    assert!(get(&set, "/", &[]).deny.is_none());
    // An excluded argument is not inspected; another one is.
    assert!(get(&set, &format!("/x?token={hash}"), &[]).deny.is_none());
    assert_eq!(
        get(&set, &format!("/x?id={hash}"), &[]).deny.map(|h| h.id),
        Some(22)
    );
    // skipAfter jumps over rule 22 (both in phase 2: a skip stays in its phase).
    assert!(get(&set, &format!("/health?id={hash}"), &[]).deny.is_none());
    // Rule 23 was removed.
    assert!(get(&set, "/", &[("X-Debug", "1")]).deny.is_none());
}

#[test]
fn what_is_not_run_is_refused_naming_the_file_line_and_directive() {
    let cases = [
        ("SecAuditEngine On\n", "SecAuditEngine: not a directive"),
        (
            "SecRequestBodyLimit 1000\n",
            "SecRequestBodyLimit: set the body inspection limit in rampart's config",
        ),
        (
            "\n\nSecRule ARGS \"@verifyCC \\d+\" \"id:1\"\n",
            ":3: SecRule: operator @verifyCC is not supported",
        ),
        (
            "SecRule SESSION:x \"@rx a\" \"id:1\"\n",
            "variable `SESSION` is not supported",
        ),
        (
            "SecRule ARGS \"@rx a\" \"id:1,t:escapeSeqDecode\"\n",
            "transformation `escapeSeqDecode` is not supported",
        ),
        (
            "SecRule ARGS \"@rx a\" \"id:1,ctl:requestBodyLimit=1\"\n",
            "ctl:requestBodyLimit is not supported",
        ),
        ("SecRule ARGS \"@rx a\" \"id:1,phase:6\"\n", "phases are 1 to 5"),
        (
            "SecRule ARGS \"@rx a\" \"id:1,setvar:session.x=1\"\n",
            "rampart keeps the TX, IP and GLOBAL collections",
        ),
        ("SecRule ARGS \"@rx (\" \"id:1\"\n", "@rx:"),
        ("SecRule ARGS \"@rx a\" \"phase:1\"\n", "a rule without an id"),
        (
            "SecRule ARGS \"@rx a\" \"id:1\"\nSecRule ARGS \"@rx b\" \"id:1\"\n",
            "rule id 1 is used twice",
        ),
        ("SecRule ARGS \"@rx a\" \"id:1,chain\"\n", "no rule follows"),
    ];
    for (text, want) in cases {
        let e = rules(text).expect_err(text).to_string();
        assert!(e.contains(want), "{text}: {e}");
        if want.starts_with(':') || want.contains("directive") {
            assert!(e.contains("rules.conf:"), "{e}");
        }
    }
}

#[test]
fn ctl_actions_change_this_request_s_rules_only() {
    let set = rules(
        r#"SecRule REQUEST_FILENAME "@beginsWith /wp-admin" "id:100,phase:1,pass,nolog,ctl:ruleRemoveTargetById=200;ARGS:content,ctl:ruleRemoveByTag=attack-sqli"
SecRule REQUEST_FILENAME "@streq /trusted" "id:101,phase:1,pass,nolog,ctl:ruleEngine=Off"
SecRule REQUEST_FILENAME "@streq /trial" "id:102,phase:1,pass,nolog,ctl:ruleEngine=DetectionOnly,ctl:auditLogParts=+E"
SecRule ARGS "@rx <script" "id:200,phase:2,deny,t:lowercase"
SecRule ARGS "@pm union" "id:201,phase:2,deny,tag:'attack-sqli'"
"#,
    )
    .expect("loads");
    // The editor's post body field may hold markup; other fields may not.
    assert!(get(&set, "/wp-admin/post.php?content=%3Cscript%3E", &[])
        .deny
        .is_none());
    assert_eq!(
        get(&set, "/wp-admin/post.php?title=%3Cscript%3E", &[])
            .deny
            .map(|h| h.id),
        Some(200)
    );
    assert_eq!(
        get(&set, "/blog?content=%3Cscript%3E", &[]).deny.map(|h| h.id),
        Some(200)
    );
    // The tag's rules are off there, not elsewhere.
    assert!(get(&set, "/wp-admin/x?q=union", &[]).deny.is_none());
    assert_eq!(get(&set, "/x?q=union", &[]).deny.map(|h| h.id), Some(201));
    // Off: nothing runs after; DetectionOnly: the denial is reported, not made.
    assert!(get(&set, "/trusted?q=union", &[]).deny.is_none());
    let o = get(&set, "/trial?q=union", &[]);
    assert!(o.detection_only && o.deny.map(|h| h.id) == Some(201));
}

#[test]
fn the_set_up_that_reads_no_request_runs_once_and_requests_start_from_it() {
    let set = rules(
        r#"SecAction "id:1,phase:1,pass,nolog,setvar:tx.level=2,setvar:tx.score=0"
SecRule TX:LEVEL "@lt 3" "id:2,phase:1,pass,nolog,skipAfter:END-SETUP"
SecAction "id:3,phase:1,pass,nolog,setvar:tx.skipped=1"
SecMarker END-SETUP
SecRule &TX:skipped "@eq 0" "id:4,phase:1,pass,nolog,setvar:tx.not_skipped=1"
SecRule REQUEST_HEADERS:User-Agent "@contains evil" "id:5,phase:1,block,msg:'evil',setvar:'tx.score=+%{tx.level}'"
SecAction "id:6,phase:1,pass,nolog,setvar:tx.after=1"
SecRule TX:SCORE "@ge 2" "id:7,phase:1,deny,msg:'score %{tx.score} not_skipped=%{tx.not_skipped} skipped=%{tx.skipped} after=%{tx.after}'"
"#,
    )
    .expect("loads");
    // Rules 1-4 read only TX: they ran at load; rule 5 reads the request.
    assert_eq!(set.prelude_len(), 4);
    let o = get(&set, "/", &[("user-agent", "evil bot")]);
    assert_eq!(
        o.deny.expect("denied").msg,
        "score 2 not_skipped=1 skipped= after=1"
    );
    assert!(get(&set, "/", &[("user-agent", "curl")]).deny.is_none());
    // An exclusion that touches a set-up rule: this request runs them all.
    let without_4 = Exclusions::parse(&["4".to_string()]).expect("exclusion");
    let o = set.inspect(&Request {
        method: "GET",
        uri: "/",
        headers: vec![(b"user-agent", b"evil")],
        exclusions: [Some(&without_4), None],
        ..Request::default()
    });
    assert_eq!(
        o.deny.expect("denied").msg,
        "score 2 not_skipped= skipped= after=1"
    );
}
