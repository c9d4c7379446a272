// Package profiles is legacyvm's profile language: the HCL schema of
// variable, locals, host, license, network (with allow rules),
// snapshot_policy and vm (with disk, install and windows) blocks, their
// decoding, functions, variables and validation. Load turns a directory of
// *.hcl files (or one file) into a plain typed Profile (sizes in bytes,
// durations, netip.Prefix, enums, count expanded into Instances, licence
// seats handed out) that keeps source ranges, or into hcl.Diagnostics that
// say exactly what is wrong, where, and what to do.
//
// Contract:
//   - All problems are reported in one run, each with the tightest range;
//     a profile is valid when the diagnostics contain no error (warnings
//     allowed). Diagnostics carry no EvalContext, so printing them never
//     shows variable values.
//   - Loading never reads secrets: env(), file() and command() as the whole
//     value of product_key or admin_password are recorded as
//     license.Source values and read only by commands that need them. A
//     literal value is kept (SourceLiteral) with a warning; Profile.Sources
//     masks it (and the variable or local it came from) so snippets show
//     at most the last five characters.
//   - Elsewhere env() and file() are evaluated at load time (file() reads
//     at most 1 MiB of a regular file); command() is an error.
//   - Variables: default < LEGACYVM_VAR_<name> < --var-file < --var.
//   - References: var.x, local.x, license.x, network.x, snapshot_policy.x,
//     host.x (block references only inside vm blocks), and count.index
//     (1..count, the number in the instance name) in windows.computer_name.
//   - ParseSize, ParseDuration and ParseSchedule are the only parsers of
//     sizes, durations and schedules; runtime code uses them too.
package profiles
