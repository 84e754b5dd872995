"""gRPC entry points: ``servicers`` (PaymentGateway, PayerSimulator, MessageSimulator; thin) and
``converters`` (domain objects to protos)."""
