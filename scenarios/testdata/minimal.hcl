scenario "minimal" {}

world "test_kind" {}

agent "solo" {
  command = "/bin/solo"
}
