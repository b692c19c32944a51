scenario "minimal" {}

world "test_kind" {}

agent "solo" {
  command = "./bot"
}
