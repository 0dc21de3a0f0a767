variable "length" {
  type    = number
  default = 2
}
