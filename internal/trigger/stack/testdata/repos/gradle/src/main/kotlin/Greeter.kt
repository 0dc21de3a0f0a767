fun greet(name: String) = "hello, $name"

fun main() = println(greet("paved"))
