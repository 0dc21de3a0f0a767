import kotlin.test.Test
import kotlin.test.assertEquals

class GreeterTest {
    @Test
    fun greets() = assertEquals("hello, paved", greet("paved"))
}
