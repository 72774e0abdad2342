"""Token usage, summed per node, run, goal and schedule."""

from pydantic import BaseModel


class TokenUsage(BaseModel):
    """What LLM calls cost; addition makes roll-ups one expression."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens, the figure budgets are checked against."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: "TokenUsage") -> "TokenUsage":
        return TokenUsage(
            requests=self.requests + other.requests,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )
