"""A handler with no module-level init: its cold start is the runtime's own cost alone."""


def handler(event, context):
    return None
