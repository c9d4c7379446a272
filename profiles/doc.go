// Package profiles is legacyvm's profile language: the HCL schema of
// variable, locals, host, license, network, snapshot_policy and vm blocks,
// decoding, functions, variables and validation. Load turns a directory of
// *.hcl files (or one file) into a plain typed Profile that keeps source
// ranges, or into hcl.Diagnostics that say exactly what is wrong and where.
//
// Loading never reads secrets: env(), file() and command() in secret-valued
// attributes (product_key, admin_password) are recorded as license.Source
// values and read only by commands that need them.
package profiles
