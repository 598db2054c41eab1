"""The API's request parsers (kept apart from config.api: DRF's settings import them)."""

from rest_framework import exceptions
from rest_framework.parsers import JSONParser


class ApiJSONParser(JSONParser):
    """DRF's JSON parser; a body nested deeper than the decoder's recursion limit is a 400
    like any other malformed JSON (DRF only turns ValueError into one)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
