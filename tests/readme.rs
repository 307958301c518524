//! The README's CLI reference is the binary's own `--help` output: regenerate it with
//! `bash scripts/readme-help.sh` whenever a flag changes.

mod util;

#[test]
fn readme_cli_reference_matches_help_output() {
    let readme = std::fs::read_to_string(util::root().join("README.md")).expect("read README.md");
    let mut checked = 0;
    for (start, _) in readme.match_indices("<!-- help:") {
        let rest = &readme[start + "<!-- help:".len()..];
        let sub = rest.split_whitespace().next().expect("subcommand name");
        let body_start = rest.find("```text\n").expect("text block") + "```text\n".len();
        let body_end = rest.find("\n```\n<!-- /help -->").expect("block end");
        let documented = &rest[body_start..body_end];
        let mut cmd = util::imgbuild();
        if sub != "imgbuild" {
            cmd.arg(sub);
        }
        let help = util::run_ok(cmd.arg("--help").env("COLUMNS", "100").env("NO_COLOR", "1"));
        assert_eq!(
            documented,
            help.trim_end(),
            "README's `{sub} --help` is stale: run `bash scripts/readme-help.sh`"
        );
        checked += 1;
    }
    for sub in ["imgbuild", "inspect", "build", "push", "upload"] {
        assert!(
            readme.contains(&format!("<!-- help:{sub} -->")),
            "README lacks the CLI reference of `{sub}`"
        );
    }
    assert!(checked >= 5);
}
