"""One router per resource (``/v1/<resource>``), plus ``dashboard`` (the pages) and ``health``."""
