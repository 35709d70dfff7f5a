//! JUnit XML through quick-junit: one testsuite per group (the rule groups, then
//! `commands`), one testcase per case or command check, failures carrying the evidence.

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::ReportError;
use crate::conform::{CaseResult, ConformRun, Outcome};

/// Suite order in the report.
const GROUPS: [&str; 6] = ["wire", "session", "dispatch", "events", "oob", "commands"];

/// The run as JUnit XML.
pub fn to_junit(run: &ConformRun) -> Result<String, ReportError> {
    let mut report = Report::new("qmpcheck-conform");
    report.set_time(run.wall_time);
    for group in GROUPS {
        let members: Vec<&CaseResult> = run.results.iter().filter(|r| r.group() == group).collect();
        if members.is_empty() {
            continue;
        }
        let mut suite = TestSuite::new(group);
        suite.add_property(Property::new("target", run.target.description.as_str()));
        if let Some(version) = &run.target.version {
            suite.add_property(Property::new("qemu-version", version.as_str()));
        }
        suite.set_time(members.iter().map(|r| r.duration).sum());
        suite.add_test_cases(members.iter().map(|r| test_case(r, group)));
        report.add_test_suite(suite);
    }
    report.to_string().map_err(|e| ReportError::Junit(e.to_string()))
}

fn test_case(result: &CaseResult, group: &str) -> TestCase {
    let status = match &result.outcome {
        Outcome::Pass => TestCaseStatus::success(),
        Outcome::Fail { evidence } => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(format!("{}: {}", result.rule, evidence.expected));
            status.set_type(result.rule.id());
            status.set_description(format!(
                "rule: {}\nrequest: {}\nreply: {}\nexpected: {}",
                result.rule, evidence.request, evidence.reply, evidence.expected
            ));
            status
        }
        Outcome::Skip { reason } => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(reason.as_str());
            status
        }
    };
    let mut case = TestCase::new(result.id.as_str(), status);
    case.set_classname(group);
    case.set_time(result.duration);
    case
}
