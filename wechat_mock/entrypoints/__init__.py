"""Entry points. gRPC: ``servicers`` (PaymentGateway, PayerSimulator, MessageSimulator; thin) and
``converters`` (domain objects to protos). WeChat's HTTP wire (``--http-listen``): ``http_api``
(the APIv3 routes over the same use cases, request signatures, signed answers, faults),
``http_requests`` (parsing, WeChat's errors, admission), ``http_documents`` (WeChat's JSON and
the bill file), ``http_server`` (the listener)."""
