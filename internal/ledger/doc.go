// Package ledger keeps the integrity record of private modules: the first
// h1: hash modgate saw for each private .mod and .zip, and the refusal of any
// later copy of the same version that hashes differently.
//
// Public modules are checked against a checksum database (package sumdb).
// Private modules are in no database, and they come from Git servers where a
// tag can be moved with one forced push. The go command on a client that has
// the version in its go.sum would then fail with a checksum mismatch, and a
// client that has not would silently get different code for the same
// version. The ledger gives private modules the database's guarantee within
// one modgate: a version, once served, keeps its content.
//
// # What it records
//
// Hashes are the ones go.sum holds, computed exactly as the go command does
// (golang.org/x/mod/sumdb/dirhash): a .mod file is the Hash1 of a tree
// holding only that file, named go.mod; a zip is HashZip with Hash1.
//
// The file {Dir}/ledger.sum holds one record a line, appended and fsynced
// before a check that recorded something returns, and loaded at Open:
//
//	corp.example.com/auth v1.2.0 h1:Qx8…= 2025-03-01T10:04:05Z
//	corp.example.com/auth v1.2.0/go.mod h1:9fG…= 2025-03-01T10:04:04Z
//
// The first three fields are a go.sum line, so `cut -d' ' -f1-3` turns the
// ledger into a go.sum; the fourth is when the hash was first seen. Blank
// lines and lines starting with # are allowed, for operators' notes. A last
// line without its newline is what a crash in the middle of an append leaves:
// Open ignores it with a warning and cuts it off (the check that was writing
// it never returned success, so nothing was served on its strength). Any
// other malformed line, or two lines giving one file two hashes, makes Open
// fail with the line's number: an integrity record that does not parse is
// not silently trusted.
//
// To accept a moved tag deliberately, an operator stops modgate, deletes the
// version's lines and its stored files, and starts it again. The message
// every refusal carries says to publish a new version instead.
//
// # Checks
//
// CheckMod and CheckZip implement the mirror's Checker: the first check of a
// file records its hash; a later one compares and fails with an error
// matching ErrMoved (a *MovedError, with both hashes) when they differ. The
// mirror then stores nothing, and as it never overwrites a stored file, the
// recorded content keeps being served. Recording and comparing happen under
// one mutex, so two concurrent checks of the same file cannot record two
// hashes: the first writer wins and the other compares against it.
//
// CheckZip also compares the go.mod inside the zip with a recorded .mod. The
// go command reads the go.mod files of a whole build list long before it
// downloads the zips it needs, so the moment a tag is most likely to move is
// between the two: without this, the zip of the new commit would be recorded
// next to the .mod of the old one.
//
// # What it does not do
//
// It does not decide which modules are private (the patterns come from
// configuration), does not look at public modules, and does not fetch or
// store module files. One process owns a Dir at a time.
//
// # Replicas
//
// The records live behind a small Backend interface: the ledger file is the
// default; package state/postgres keeps them in a table shared by every
// replica, where the first replica to record a file wins (a unique key, an
// INSERT that does nothing on conflict) and every other replica compares
// against that hash, so a tag moved after any replica stored the first copy
// is refused by all. Package ledgertest is the conformance suite both pass.
package ledger
