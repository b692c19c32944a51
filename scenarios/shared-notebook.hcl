# Shared notebook: four writers take turns extending two shared files under
# leases (each waits for the lease, appends a line, commits it with its
# hash, releases it), while a rogue writes into the notebook without a
# lease. result.json's "workspace" section reports the edits committed, the
# violations detected and the files restored; every version is kept in
# versions/ (terrarium files RUN_DIR log notebook.md).
#
#   go run ./cmd/terrarium run scenarios/shared-notebook.hcl

scenario "shared-notebook" {
  seed            = 7
  ticks           = 40
  action_deadline = "10s"
}

world "turns" {
  rounds = 40
}

workspace {
  enforcement = "auto"              # permissions as root with agents as their own users, else detect
  seed        = "shared-notebook"   # copied into workspace/shared
  lease_ttl   = "5s"
  lock_delay  = "200ms"
}

agent "writer" {
  runtime = "builtin"
  command = "notebook_writer"
  count   = 4
}

agent "rogue" {
  runtime = "builtin"
  command = "notebook_rogue"
}
