"""Declarative SageMaker pipelines: definitions, compiler, AWS and local runners."""
