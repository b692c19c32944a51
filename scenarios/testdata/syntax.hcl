scenario "x" {
  seed = 1

world "test_kind" {}
