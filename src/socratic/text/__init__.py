"""The text rules every stage shares: the layout of each student role (training examples, prompts,
parsers), the four methods and the roles they train, gold-answer normalisation and answer extraction,
and the calculator that checks and completes `<<expr=value>>` without executing code."""
