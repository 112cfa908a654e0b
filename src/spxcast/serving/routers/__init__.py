"""One router per resource; each handler is a thin call into :class:`~spxcast.serving.service.ServingService`."""
