-- The risk-source categories: the kinds a rule may name for target type risk_source.
SELECT code FROM risk_categories
