resource "random_pet" "env" {
  length = 2
}
