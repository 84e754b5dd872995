"""The recharge order, its state machine and events. Imports no sqlalchemy, grpc or generated code."""
