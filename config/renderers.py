"""The API's JSON renderer (kept apart from config.api: DRF's settings import it)."""

from rest_framework.renderers import JSONRenderer


class ApiJSONRenderer(JSONRenderer):
    """DRF's UTF-8 JSON, with \\u escapes when the data holds a lone surrogate.

    JSON input may carry one ("\\ud800"), and an error message that echoes the input ("is not
    a valid choice") has no UTF-8 form then; the ASCII form of the same JSON has one.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            ascii_renderer = JSONRenderer()
            ascii_renderer.ensure_ascii = True
            return ascii_renderer.render(data, accepted_media_type, renderer_context)
